"""What every API of the product shares on top of DRF: strict fields, the one error shape, the
JSON parser, the session-broker paging and the OpenAPI postprocessing.

pam/api/ holds only the routers, one per reference document; the apps import these helpers from
here, never from pam/api/, which imports the apps' views.
"""
