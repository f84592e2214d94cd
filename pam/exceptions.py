"""Errors the services raise; the API turns them into JSON 4xx responses, the console into messages."""


class ServiceError(Exception):
    """A request the domain refuses, with the HTTP status that describes why."""

    status_code = 400

    def __init__(self, message, *, field=None):
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(ServiceError):
    status_code = 400


class Forbidden(ServiceError):
    status_code = 403


class Conflict(ServiceError):
    status_code = 409
