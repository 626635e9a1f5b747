// A real OpenID provider (the certified `oidc-provider` package) for Goterra's single
// sign-on tests. It listens on 127.0.0.1 on a free port and prints one JSON line
// {"issuer": "..."} once it answers.
//
// Environment:
//   OIDC_PORT     port to listen on (default: any free one)
//   OIDC_CLIENTS  JSON list of clients: [{"client_id", "client_secret", "redirect_uris": [...]}]
//
// Sign-in uses the package's development interactions: GET /interaction/{uid} shows a form,
// POST it with `prompt=login`, `login=<account>` and any `password`. Account `<name>` has
// `sub` = name, `email` = name if it has an @ else name@example.org, verified unless the name
// starts with "unverified", and `groups` = ["staff"] when the name starts with "staff".
// Consent is implied (a first-party provider), so the login form is the only step, and it is
// shown at every authorization.
import http from 'node:http';
import Provider, { interactionPolicy } from 'oidc-provider';

const clients = JSON.parse(process.env.OIDC_CLIENTS || '[]');

function claimsOf(accountId) {
  return {
    sub: accountId,
    email: accountId.includes('@') ? accountId : `${accountId}@example.org`,
    email_verified: !accountId.startsWith('unverified'),
    name: accountId,
    groups: accountId.startsWith('staff') ? ['staff'] : [],
  };
}

// Every authorization shows the login form, even with a session at the provider: a test's
// browser signs in as several accounts one after the other.
const policy = interactionPolicy.base();
policy.get('login').checks.add(new interactionPolicy.Check(
  'always_login',
  'the test provider asks for the account every time',
  (ctx) => (ctx.oidc.result?.login ? interactionPolicy.Check.NO_NEED_TO_PROMPT
    : interactionPolicy.Check.REQUEST_PROMPT),
));

let handler = (req, res) => { res.statusCode = 503; res.end(); };
const server = http.createServer((req, res) => handler(req, res));

server.listen(Number(process.env.OIDC_PORT || 0), '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: clients.map((client) => ({
      grant_types: ['authorization_code'],
      response_types: ['code'],
      ...client,
    })),
    // PKCE for every client: a token request without the right verifier fails.
    pkce: { required: () => true },
    features: { devInteractions: { enabled: true } },
    interactions: { policy },
    // The claims in the ID token itself (Goterra reads no userinfo).
    conformIdTokenClaims: false,
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      groups: ['groups'],
    },
    cookies: { keys: ['goterra-test-provider-cookie-key'] },
    findAccount: async (ctx, id) => ({
      accountId: id,
      claims: async () => claimsOf(id),
    }),
    // Skip the consent screen: grant the client what it asked for.
    loadExistingGrant: async (ctx) => {
      const grantId = ctx.oidc.result?.consent?.grantId
        || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) {
        return ctx.oidc.provider.Grant.find(grantId);
      }
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope('openid email profile groups');
      await grant.save();
      return grant;
    },
  });
  handler = provider.callback();
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
