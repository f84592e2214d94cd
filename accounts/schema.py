"""OpenAPI descriptions of PAM's authentication schemes (drf-spectacular extensions)."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class TokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.TokenAuthentication"
    name = ["bearerToken", "apiKeyHeader"]

    def get_security_requirement(self, auto_schema):
        return [{name: []} for name in self.name]  # either header, not both

    def get_security_definition(self, auto_schema):
        return [
            {
                "type": "http",
                "scheme": "bearer",
                "description": "An API key `name:secret` or a personal token `pamu_…`. "
                "`Authorization: Token <token>` is accepted too.",
            },
            {"type": "apiKey", "in": "header", "name": "X-API-Key"},
        ]


class SessionAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.SessionAuthentication"
    name = "browserSession"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "cookie", "name": "sessionid"}
