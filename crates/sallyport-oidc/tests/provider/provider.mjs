// A real OpenID Provider (npm `oidc-provider`) on 127.0.0.1 for sallyport-oidc's tests.
//
// Usage: node provider.mjs '<json settings>'
// Settings (all optional except clients):
//   clients:          oidc-provider client metadata, e.g. [{client_id, client_secret, redirect_uris}]
//   accounts:         { "<account id>": { <claims> } }  (the test controls every claim; `sub` is the id)
//   id_token_ttl:     id_token lifetime in seconds (default 3600)
//   pkce_required:    true makes the provider reject authorization requests without PKCE
//   claims_in_id_token: false puts scope claims only into userinfo (the spec's default), true (default) into
//                       the id_token too
//   mount:            a path prefix the provider lives under (its issuer is http://127.0.0.1:<port><mount>),
//                     e.g. Microsoft's per-tenant `/<tenant id>/v2.0`
// Prints `listening <port>` once ready. Test-only routes (not part of OpenID Connect):
//   POST /__test/sign        body: claims JSON; ?key=foreign signs with a key the provider does not publish
//   POST /__test/delay?ms=N  every later request (except /__test) waits N ms first (a slow provider)
//   GET  /__api/{github,auth0,discord,slack,facebook,spotify}/…  each provider's user API in its own shape,
//        behind this provider's access tokens (for the plain-OAuth2 adapters)

import crypto from 'node:crypto';
import http from 'node:http';
import * as jose from 'jose';
import Provider from 'oidc-provider';

const settings = JSON.parse(process.argv[2] || '{}');
const accounts = settings.accounts || {};
let delayMs = 0;

const { privateKey } = await jose.generateKeyPair('RS256', { extractable: true });
const signingJwk = { ...(await jose.exportJWK(privateKey)), kid: 'test-key-1', alg: 'RS256', use: 'sig' };
const { privateKey: foreignKey } = await jose.generateKeyPair('RS256', { extractable: true });

const server = http.createServer();
await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
const port = server.address().port;
const mount = settings.mount || '';
const issuer = `http://127.0.0.1:${port}${mount}`;

const provider = new Provider(issuer, {
  clients: settings.clients || [],
  scopes: ['openid', 'offline_access', 'email', 'profile', ...(settings.extra_scopes || [])],
  jwks: { keys: [signingJwk] },
  cookies: { keys: ['sallyport-oidc-test-cookie-key'] },
  conformIdTokenClaims: settings.claims_in_id_token === false,
  claims: {
    openid: ['sub', 'tid', 'oid'],
    email: ['email', 'email_verified'],
    profile: ['name', 'given_name', 'family_name', 'preferred_username', 'picture', 'locale'],
  },
  features: {
    devInteractions: { enabled: true },
    claimsParameter: { enabled: true },
  },
  pkce: { required: () => settings.pkce_required === true },
  ttl: { IdToken: settings.id_token_ttl || 3600, AccessToken: 3600 },
  async findAccount(_ctx, id) {
    if (!accounts[id]) return undefined;
    return { accountId: id, async claims() { return { ...accounts[id], sub: id }; } };
  },
});
// Plain http on loopback: tell oidc-provider not to insist on TLS for its cookies.
provider.proxy = true;

async function readBody(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

async function accountForBearer(req) {
  const auth = req.headers.authorization || '';
  const token = auth.startsWith('Bearer ') ? auth.slice(7) : '';
  const at = token ? await provider.AccessToken.find(token) : undefined;
  return at ? at.accountId : undefined;
}

function json(res, status, body) {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

const callback = provider.callback();
server.on('request', async (req, res) => {
  const url = new URL(req.url, issuer);
  try {
    if (url.pathname === '/__test/sign' && req.method === 'POST') {
      const claims = JSON.parse(await readBody(req));
      const key = url.searchParams.get('key') === 'foreign' ? foreignKey : privateKey;
      const jwt = await new jose.SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'test-key-1' }).sign(key);
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(jwt);
      return;
    }
    if (url.pathname === '/__test/delay' && req.method === 'POST') {
      delayMs = Number(url.searchParams.get('ms') || 0);
      res.writeHead(204);
      res.end();
      return;
    }
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    if (url.pathname === '/__api/github/user') {
      const id = await accountForBearer(req);
      if (!id) return json(res, 401, { message: 'Bad credentials' });
      const a = accounts[id];
      return json(res, 200, {
        id: Number(a.github_id || 4242), login: a.preferred_username || id, name: a.name || null,
        avatar_url: a.picture || '', html_url: `https://github.example/${id}`, blog: '',
        updated_at: '2026-01-02T03:04:05Z',
      });
    }
    if (url.pathname.startsWith('/__api/') && !url.pathname.startsWith('/__api/github') && !url.pathname.startsWith('/__api/auth0')) {
      const id = await accountForBearer(req);
      if (!id) return json(res, 401, { error: 'invalid_token' });
      const a = accounts[id];
      switch (url.pathname) {
        case '/__api/discord/users/@me':
          return json(res, 200, { id: `d-${id}`, username: id, discriminator: '0042', avatar: 'a_cafe',
            email: a.email, verified: a.email_verified === true, locale: 'de' });
        case '/__api/slack/users.identity':
          return json(res, 200, { ok: true, user: { id: `U-${id}`, name: id, email: a.email, image_512: 'https://img/x.png' },
            team: { id: 'T-1' } });
        case '/__api/facebook/me': {
          const secret = (settings.clients || [])[0]?.client_secret || '';
          const token = req.headers.authorization.slice(7);
          const expected = crypto.createHmac('sha256', secret).update(token).digest('hex');
          if (url.searchParams.get('appsecret_proof') !== expected) return json(res, 400, { error: 'bad appsecret_proof' });
          return json(res, 200, { id: `fb-${id}`, name: a.name || id, first_name: a.given_name || '', email: a.email,
            picture: { data: { url: 'https://img/fb.png' } } });
        }
        case '/__api/spotify/me':
          return json(res, 200, { id: `sp-${id}`, display_name: id, email: a.email, images: [{ url: 'https://img/sp.png' }],
            external_urls: { spotify: `https://open.spotify/user/${id}` } });
        default:
          return json(res, 404, { error: 'not_found' });
      }
    }
    if (url.pathname === '/__api/auth0/userinfo') {
      const id = await accountForBearer(req);
      if (!id) return json(res, 401, { error: 'invalid_token' });
      return json(res, 200, { ...accounts[id], sub: `auth0|${id}`, updated_at: '2026-01-02T03:04:05.000Z' });
    }
    if (url.pathname === '/__api/github/user/emails') {
      const id = await accountForBearer(req);
      if (!id) return json(res, 401, { message: 'Bad credentials' });
      const a = accounts[id];
      return json(res, 200, [
        { email: `other-${id}@example.org`, primary: false, verified: false },
        { email: a.email, primary: true, verified: a.email_verified === true },
      ]);
    }
    if (mount) {
      if (!url.pathname.startsWith(mount)) return json(res, 404, { error: 'not_found' });
      req.originalUrl = req.url;
      req.url = req.url.slice(mount.length) || '/';
    }
    callback(req, res);
  } catch (e) {
    json(res, 500, { error: String(e) });
  }
});

// The test reads only the first line; never die of a closed pipe.
process.stdout.on('error', () => {});
process.stdout.write(`listening ${port}\n`);
