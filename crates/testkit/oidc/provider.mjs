// A real OpenID provider for Portcullis's OIDC tests: `oidc-provider` (panva) on a loopback port.
//
// Started by crates/testkit/src/oidc.rs (`OidcProvider`), never by hand in CI. Settings come from
// the environment so that no secret shows in `ps`:
//   OIDC_PORT                  loopback port to listen on (required)
//   OIDC_CLIENT_ID             the one registered client (required)
//   OIDC_CLIENT_SECRET         its secret (required)
//   OIDC_REDIRECT_URIS         space-separated redirect URIs (required)
//   OIDC_POST_LOGOUT_URIS      space-separated post-logout redirect URIs (optional)
//   OIDC_ACCESS_TOKEN_TTL      access token lifetime in seconds (default 3600; small to test refresh)
//   OIDC_AUTH_METHOD           the client's token_endpoint_auth_method (default client_secret_basic)
//   OIDC_NODE_MODULES          the node_modules directory holding oidc-provider (required: it lives
//                              in a cache outside the repository, and ES modules ignore NODE_PATH)
//
// The client must use PKCE (S256), gets refresh tokens with every code (no offline_access consent
// dance) that rotate on every use (reusing a spent one revokes the grant, as strict providers
// do), and may log out (RP-initiated logout). With OIDC_AUTH_METHOD set, discovery lists only
// that client authentication method. The development interactions stay on: their login
// form accepts any login and password, and `findAccount` turns the login into the account
// `{ sub: <login>, email: <login>@example.test }`.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`provider.mjs: ${name} is not set`);
    process.exit(2);
  }
  return value;
}

const modules = required('OIDC_NODE_MODULES');
const { default: Provider } = await import(
  pathToFileURL(join(modules, 'oidc-provider', 'lib', 'index.js')).href
);

const port = Number(required('OIDC_PORT'));
const issuer = `http://127.0.0.1:${port}`;
const words = (value) => (value || '').split(' ').filter((word) => word.length > 0);

const authMethod = process.env.OIDC_AUTH_METHOD || 'client_secret_basic';

const configuration = {
  clients: [
    {
      client_id: required('OIDC_CLIENT_ID'),
      client_secret: required('OIDC_CLIENT_SECRET'),
      redirect_uris: words(required('OIDC_REDIRECT_URIS')),
      post_logout_redirect_uris: words(process.env.OIDC_POST_LOGOUT_URIS),
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: authMethod,
    },
  ],
  clientAuthMethods: [authMethod],
  rotateRefreshToken: true,
  pkce: { methods: ['S256'], required: () => true },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
  },
  scopes: ['openid', 'email', 'offline_access'],
  claims: { openid: ['sub'], email: ['email', 'email_verified'] },
  ttl: {
    AccessToken: Number(process.env.OIDC_ACCESS_TOKEN_TTL || 3600),
    IdToken: 3600,
    RefreshToken: 86400,
  },
  async issueRefreshToken(ctx, client) {
    return client.grantTypeAllowed('refresh_token');
  },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: `${id}@example.test`, email_verified: true };
      },
    };
  },
  cookies: { keys: ['portcullis-test-cookie-key'] },
};

const provider = new Provider(issuer, configuration);
// oidc-provider itself takes either secret method whichever is registered; strict providers
// refuse the one they do not list, and so does this one for client_secret_post.
if (authMethod === 'client_secret_post') {
  provider.use(async (ctx, next) => {
    if (ctx.path === '/token' && ctx.headers.authorization !== undefined) {
      ctx.status = 401;
      ctx.body = { error: 'invalid_client', error_description: 'use client_secret_post' };
      return;
    }
    await next();
  });
}
provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});
