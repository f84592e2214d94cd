// A real OpenID Connect provider (panva's oidc-provider) for the single sign-on tests.
// Accounts and their groups are read from ACCOUNTS_FILE on every sign-in, so a test can change
// a user's groups between two logins. Listens on 127.0.0.1 only.
import { readFileSync } from "node:fs";
import Provider from "oidc-provider";

const env = (name) => {
  if (!process.env[name]) throw new Error(`${name} is required`);
  return process.env[name];
};

const port = Number(env("PORT"));
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: env("CLIENT_ID"),
      client_secret: env("CLIENT_SECRET"),
      redirect_uris: [env("REDIRECT_URI")],
      post_logout_redirect_uris: [env("POST_LOGOUT_URI")],
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "client_secret_post",
    },
  ],
  pkce: { required: () => true },
  scopes: ["openid", "email", "profile", "groups"],
  claims: {
    openid: ["sub"],
    email: ["email", "email_verified"],
    profile: ["name", "preferred_username"],
    groups: ["groups"],
  },
  features: { devInteractions: { enabled: true }, rpInitiatedLogout: { enabled: true } },
  cookies: { keys: ["pam-test-provider-cookie-key"] },
  async findAccount(ctx, id) {
    const account = JSON.parse(readFileSync(env("ACCOUNTS_FILE"), "utf8"))[id];
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() {
        return {
          sub: account.sub || id,
          email: account.email,
          email_verified: true,
          name: account.name,
          preferred_username: id,
          groups: account.groups,
        };
      },
    };
  },
});
provider.proxy = false;

provider.listen(port, "127.0.0.1", () => console.log(`ready ${issuer}`));
