from django.dispatch import Signal

# Sent by nodes.services.reap_dead_nodes inside its transaction, with ``node_ids`` (the nodes
# found silent, about to be deleted): each app ends the work those nodes held (sessions as lost,
# tunnels handed to another worker) with conditional UPDATEs, and returns how many of its rows
# changed. A receiver that raises rolls the whole reap back, to be tried again.
nodes_lost = Signal()
