"""OpenAPI postprocessing: the one error shape of pam/rest/errors.py, documented on every operation."""

ERROR_SCHEMA = {
    "type": "object",
    "description": "Every refusal: a message, and for bad input the offending fields.",
    "properties": {
        "error": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": True},
    },
    "required": ["error"],
}
METHODS = ("get", "put", "post", "delete", "patch")


def document_errors(result, generator, request, public):
    """Add ``4XX`` answering ``Error`` to every operation that does not describe its own."""
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_SCHEMA
    reference = {"$ref": "#/components/schemas/Error"}
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method in METHODS:
                operation.setdefault("responses", {}).setdefault(
                    "4XX", {"description": "Refused", "content": {"application/json": {"schema": reference}}}
                )
    return result
