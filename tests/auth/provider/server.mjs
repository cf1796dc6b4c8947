// A real OpenID Connect provider (panva's oidc-provider) shaped like one Microsoft Entra ID
// tenant, for ragline's authentication tests. Loopback only, in-memory state.
//
//   node server.mjs CONFIG.json        (prints "LISTENING <port>" on stdout once ready)
//
// Layout, mirroring login.microsoftonline.com with http://127.0.0.1:<port> as the host:
//   issuer               /<tenant>/v2.0
//   discovery            /<tenant>/v2.0/.well-known/openid-configuration
//   authorize            /<tenant>/oauth2/v2.0/authorize
//   token                /<tenant>/oauth2/v2.0/token
//   end session          /<tenant>/oauth2/v2.0/logout
//   keys                 /<tenant>/discovery/v2.0/keys
//   userinfo             /<tenant>/oidc/userinfo      (Entra's lives on Microsoft Graph)
//   sign-in page         /interaction/<uid>           (POST /interaction/<uid>/login, login=<name>)
//
// API access tokens: request the API in any of the ways Entra or RFC 8707 clients do
// (`resource=<api_audience>`, or a scope `<api_audience>/access_as_user`, or `.default`);
// the token endpoint then returns a signed JWT for the API (Entra v2.0 claims) without
// needing `resource` again. Without an API scope it returns an opaque userinfo token.
// Optional config beyond the basics: `api_token_audience` (the `aud` of API tokens),
// `other_apis` ({"<uri>": ["Scope"]}, e.g. a Graph stand-in), per client `app_roles` and
// `service_principal_oid` (client credentials tokens), per account `sub` (default: oid) and
// `groups_overage` (Entra's _claim_names/_claim_sources instead of `groups`).
// Everything but the LISTENING line goes to stderr.

import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as http from 'node:http';
import * as querystring from 'node:querystring';

import Provider, { errors } from 'oidc-provider';

const HOST = '127.0.0.1';
const OIDC_SCOPES = ['openid', 'profile', 'email', 'offline_access'];

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const tenant = config.tenant;
const tenantPrefix = `/${tenant}`;
const discoveryPath = `/${tenant}/v2.0/.well-known/openid-configuration`;
const apiAudience = config.api_audience;
// The `aud` of API tokens. Real Entra v2.0 tokens carry the API's client id (GUID) here, not
// its App ID URI; set api_token_audience to get that, the default is api_audience.
const apiTokenAudience = config.api_token_audience || apiAudience;
const apiScopes = String(config.api_scope || 'access_as_user').split(' ').filter(Boolean);
const accessTokenTtl = config.access_token_ttl ?? 3600;
const idTokenTtl = config.id_token_ttl ?? 3600;

// --- accounts and clients ------------------------------------------------------------------

const accountsByName = new Map();
const accountsById = new Map();
for (const [name, account] of Object.entries(config.accounts || {})) {
  const entry = { ...account, tid: account.tid || tenant, sub: account.sub || account.oid };
  accountsByName.set(name, entry);
  accountsById.set(entry.sub, entry);
}

// Client fields that are ours, not client metadata: app roles granted to the app itself
// (client credentials tokens) and the object id of its service principal.
const appInfo = new Map();
const clients = (config.clients || []).map((client) => {
  const { app_roles: appRoles, service_principal_oid: spOid, ...metadata } = client;
  appInfo.set(metadata.client_id, {
    roles: appRoles || [],
    oid: spOid || uuidFrom(`sp:${metadata.client_id}`),
  });
  return {
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post', // basic is accepted as well
    ...metadata,
  };
});

function uuidFrom(seed) {
  const hex = createHash('sha256').update(seed).digest('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-8${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

function epoch() {
  return Math.floor(Date.now() / 1000);
}

async function findAccount(ctx, id) {
  const account = accountsById.get(id);
  if (!account) return undefined;
  return {
    accountId: id,
    async claims(use) {
      const claims = {
        sub: account.sub,
        oid: account.oid,
        tid: account.tid,
        ver: '2.0',
        name: account.name,
        email: account.email,
        preferred_username: account.preferred_username,
        ...groupClaims(account),
        roles: account.roles || [],
      };
      // Entra ID tokens carry nbf; oidc-provider sets iat/exp itself.
      if (use === 'id_token') claims.nbf = epoch();
      return claims;
    },
  };
}

// --- APIs (resource servers) -----------------------------------------------------------------

// Each API is asked for by scope values: bare ("access_as_user"), qualified
// ("api://<id>/access_as_user") or Entra's "<api>/.default"; or by RFC 8707's resource
// parameter. One API per token, as at Entra. `other_apis` ({"<uri>": ["Scope", ...]}) adds
// more, e.g. a stand-in for Microsoft Graph.
const apis = new Map();

function addApi(identifier, audience, scopes) {
  const values = new Set([
    ...scopes,
    ...scopes.map((scope) => `${identifier}/${scope}`),
    `${identifier}/.default`,
  ]);
  apis.set(identifier, { identifier, audience, scopes, values });
}

addApi(apiAudience, apiTokenAudience, apiScopes);
for (const [identifier, scopes] of Object.entries(config.other_apis || {})) {
  addApi(identifier, identifier, [scopes].flat());
}

function scopeValues(scope) {
  return String(scope || '').split(' ').filter(Boolean);
}

function apiAskedFor(scope) {
  const asked = scopeValues(scope);
  for (const api of apis.values()) {
    if (asked.some((value) => api.values.has(value))) return api.identifier;
  }
  return undefined;
}

function requestedResources(params) {
  if (params.resource) return [params.resource].flat();
  const identifier = apiAskedFor(params.scope);
  return identifier ? [identifier] : [];
}

function scpFor(api, scope) {
  const names = new Set();
  for (const value of scopeValues(scope)) {
    const prefix = `${api.identifier}/`;
    const bare = value.startsWith(prefix) ? value.slice(prefix.length) : value;
    if (bare === '.default') api.scopes.forEach((name) => names.add(name));
    else if (api.scopes.includes(bare)) names.add(bare);
  }
  return [...names].join(' ');
}

// Entra leaves `groups` out when a user is in too many (200 in a JWT) and points at Graph
// instead; an account with "groups_overage": true gets that shape.
function groupClaims(account) {
  if (!account.groups_overage) return { groups: account.groups || [] };
  return {
    _claim_names: { groups: 'src1' },
    _claim_sources: {
      src1: { endpoint: `https://graph.windows.net/${account.tid}/users/${account.oid}/getMemberObjects` },
    },
  };
}

// Reshape oidc-provider's RFC 9068 JWT into an Entra v2.0 access token.
async function entraAccessToken(ctx, token, jwt) {
  const { payload } = jwt;
  const clientId = payload.client_id;
  const now = payload.iat;
  const shaped = {
    aud: payload.aud,
    iss: payload.iss,
    iat: now,
    nbf: now,
    exp: payload.exp,
    azp: clientId,
    azpacr: '1',
    tid: tenant,
    uti: payload.jti,
    ver: '2.0',
  };
  if (token.kind === 'ClientCredentials') {
    const app = appInfo.get(clientId) || { roles: [], oid: uuidFrom(`sp:${clientId}`) };
    Object.assign(shaped, { idtyp: 'app', oid: app.oid, sub: app.oid, roles: app.roles });
  } else {
    const account = accountsById.get(token.accountId) || {};
    Object.assign(shaped, {
      sub: account.sub,
      oid: account.oid,
      tid: account.tid || tenant,
      name: account.name,
      preferred_username: account.preferred_username,
      ...groupClaims(account),
      roles: account.roles || [],
      scp: scpFor(apis.get(token.resourceServer.identifier()), payload.scope),
    });
  }
  jwt.header = { typ: 'JWT' };
  jwt.payload = shaped;
}

// --- provider configuration --------------------------------------------------------------------

function providerConfiguration() {
  const cookieOptions = { httpOnly: true, sameSite: 'lax', secure: false, signed: true };
  return {
    clients,
    jwks: { keys: config.keys },
    findAccount,
    scopes: OIDC_SCOPES,
    claims: {
      openid: ['sub', 'oid', 'tid', 'ver', 'nbf', 'groups', 'roles'],
      profile: ['name', 'preferred_username'],
      email: ['email'],
    },
    conformIdTokenClaims: false, // scope claims go into the ID token itself
    cookies: {
      names: {
        session: 'op_session',
        interaction: 'op_interaction',
        resume: 'op_interaction_resume',
      },
      long: cookieOptions,
      short: cookieOptions,
      keys: [randomBytes(32).toString('hex')],
    },
    pkce: { methods: ['S256'], required: () => true },
    routes: {
      authorization: '/oauth2/v2.0/authorize',
      token: '/oauth2/v2.0/token',
      end_session: '/oauth2/v2.0/logout',
      jwks: '/discovery/v2.0/keys',
      userinfo: '/oidc/userinfo',
      revocation: '/oauth2/v2.0/revoke',
      introspection: '/oauth2/v2.0/introspect',
      pushed_authorization_request: '/oauth2/v2.0/par',
      device_authorization: '/oauth2/v2.0/devicecode',
      code_verification: '/oauth2/v2.0/device',
      backchannel_authentication: '/oauth2/v2.0/bc-authorize',
      registration: '/oauth2/v2.0/register',
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      pushedAuthorizationRequests: { enabled: false },
      rpInitiatedLogout: { enabled: true, logoutSource: autoConfirmLogout },
      resourceIndicators: {
        enabled: true,
        async defaultResource(ctx, client, oneOf) {
          if (oneOf) return oneOf;
          return apiAskedFor(ctx.oidc.params.scope);
        },
        // Entra returns the API token from the code exchange without a resource parameter.
        useGrantedResource: async () => true,
        async getResourceServerInfo(ctx, resourceIndicator) {
          const api = apis.get(resourceIndicator);
          if (!api) throw new errors.InvalidTarget();
          return {
            scope: [...api.values].join(' '),
            audience: api.audience,
            accessTokenTTL: accessTokenTtl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    formats: { customizers: { jwt: entraAccessToken } },
    ttl: {
      AccessToken: accessTokenTtl,
      ClientCredentials: accessTokenTtl,
      IdToken: idTokenTtl,
      AuthorizationCode: 60,
      Interaction: 600,
      Session: 8 * 3600,
      Grant: 24 * 3600,
      RefreshToken: 24 * 3600,
    },
    renderError(ctx, out) {
      ctx.type = 'html';
      ctx.body = page('Error', `<pre>${escapeHtml(JSON.stringify(out, null, 2))}</pre>`);
    },
  };
}

// Entra signs out without a confirmation page when the request names the client: the
// confirmation form is posted back on the user's behalf by /logout/auto (see below).
async function autoConfirmLogout(ctx, form) {
  const xsrf = /name="xsrf" value="([^"]+)"/.exec(form)[1];
  ctx.status = 303;
  ctx.redirect(`${tenantPrefix}/oauth2/v2.0/logout/auto?xsrf=${encodeURIComponent(xsrf)}`);
}

// --- sign-in pages -------------------------------------------------------------------------------

function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, body) {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head><body>${body}</body></html>`;
}

function send(res, status, html) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

// Consent to everything the authorization request asked for.
async function grantAll(provider, interaction, accountId) {
  const { params } = interaction;
  const grant = interaction.grantId
    ? await provider.Grant.find(interaction.grantId)
    : new provider.Grant({ accountId, clientId: params.client_id });
  const requested = String(params.scope || '').split(' ').filter(Boolean);
  grant.addOIDCScope(requested.filter((scope) => OIDC_SCOPES.includes(scope)).join(' '));
  if (params.claims) {
    const claims = JSON.parse(params.claims);
    grant.addOIDCClaims([
      ...Object.keys(claims.id_token || {}),
      ...Object.keys(claims.userinfo || {}),
    ]);
  }
  for (const resource of requestedResources(params)) {
    const values = apis.get(resource)?.values || new Set();
    grant.addResourceScope(resource, requested.filter((scope) => values.has(scope)).join(' '));
  }
  const details = interaction.prompt.details || {};
  if (details.missingOIDCScope) grant.addOIDCScope(details.missingOIDCScope.join(' '));
  if (details.missingOIDCClaims) grant.addOIDCClaims(details.missingOIDCClaims);
  for (const [resource, scopes] of Object.entries(details.missingResourceScopes || {})) {
    grant.addResourceScope(resource, scopes.join(' '));
  }
  return grant.save();
}

function loginForm(uid, hint) {
  return page(
    'Sign in',
    `<form method="post" action="/interaction/${escapeHtml(uid)}/login">`
      + `<label>Account <input name="login" value="${escapeHtml(hint || '')}" autofocus></label>`
      + '<button type="submit">Sign in</button></form>',
  );
}

async function interactionPage(provider, req, res, uid) {
  const interaction = await provider.interactionDetails(req, res);
  if (interaction.uid !== uid) return send(res, 400, page('Error', 'interaction mismatch'));
  if (interaction.prompt.name === 'login') {
    return send(res, 200, loginForm(uid, interaction.params.login_hint));
  }
  // Already signed in, only consent is missing: grant it without asking.
  const grantId = await grantAll(provider, interaction, interaction.session.accountId);
  return provider.interactionFinished(req, res, { consent: { grantId } }, {
    mergeWithLastSubmission: true,
  });
}

async function interactionLogin(provider, req, res, uid) {
  const form = querystring.parse(await readBody(req));
  const interaction = await provider.interactionDetails(req, res);
  if (interaction.uid !== uid) return send(res, 400, page('Error', 'interaction mismatch'));
  const account = accountsByName.get(String(form.login || ''));
  if (!account) {
    return send(res, 400, page('Unknown account', `<p>No account named ${escapeHtml(form.login || '')}.</p>`));
  }
  const grantId = await grantAll(provider, interaction, account.sub);
  return provider.interactionFinished(
    req,
    res,
    { login: { accountId: account.sub }, consent: { grantId } },
    { mergeWithLastSubmission: false },
  );
}

// Posts the logout confirmation form to oidc-provider with the caller's cookies and relays
// the answer (a 303 to post_logout_redirect_uri).
function autoLogout(port, req, res, url) {
  const body = querystring.stringify({ xsrf: url.searchParams.get('xsrf') || '', logout: 'yes' });
  const forward = http.request({
    host: HOST,
    port,
    method: 'POST',
    path: `${tenantPrefix}/oauth2/v2.0/logout/confirm`,
    headers: {
      cookie: req.headers.cookie || '',
      host: req.headers.host,
      'content-type': 'application/x-www-form-urlencoded',
      'content-length': Buffer.byteLength(body),
    },
  }, (answer) => {
    res.writeHead(answer.statusCode, answer.headers);
    answer.pipe(res);
  });
  forward.on('error', (err) => send(res, 502, page('Error', escapeHtml(err.message))));
  forward.end(body);
}

// --- HTTP front ----------------------------------------------------------------------------------

// OIDC Core (and so oidc-provider) drops offline_access unless prompt includes consent; Entra
// issues a refresh token for offline_access alone. Asking for consent too gets Entra's result,
// the consent itself being granted without a page (see interactionPage).
function offlineAccessAsEntra(url) {
  const scopes = (url.searchParams.get('scope') || '').split(' ');
  const prompts = (url.searchParams.get('prompt') || '').split(' ').filter(Boolean);
  if (scopes.includes('offline_access') && !prompts.includes('consent') && !prompts.includes('none')) {
    url.searchParams.set('prompt', [...prompts, 'consent'].join(' '));
  }
  return `${url.pathname}${url.search}`;
}

function route(provider, port) {
  const callback = provider.callback();
  return async (req, res) => {
    const url = new URL(req.url, `http://${HOST}:${port}`);
    const interaction = /^\/interaction\/([^/]+)(\/login)?$/.exec(url.pathname);
    if (interaction && req.method === 'GET' && !interaction[2]) {
      return interactionPage(provider, req, res, interaction[1]);
    }
    if (interaction && req.method === 'POST' && interaction[2]) {
      return interactionLogin(provider, req, res, interaction[1]);
    }
    if (url.pathname === `${tenantPrefix}/oauth2/v2.0/logout/auto` && req.method === 'GET') {
      return autoLogout(port, req, res, url);
    }
    // oidc-provider is mounted at /<tenant>; the discovery document sits under /v2.0 as at
    // Entra. originalUrl tells oidc-provider its mount path, so that endpoint URLs in the
    // discovery document come out as /<tenant>/oauth2/v2.0/...
    if (url.pathname === discoveryPath) {
      req.originalUrl = `${tenantPrefix}/.well-known/openid-configuration${url.search}`;
      req.url = `/.well-known/openid-configuration${url.search}`;
      return callback(req, res);
    }
    if (url.pathname === `${tenantPrefix}/oauth2/v2.0/authorize` && req.method === 'GET') {
      req.url = offlineAccessAsEntra(url);
    }
    if (url.pathname.startsWith(`${tenantPrefix}/`)) {
      req.originalUrl = req.url;
      req.url = req.url.slice(tenantPrefix.length);
      return callback(req, res);
    }
    return send(res, 404, page('Not found', 'not found'));
  };
}

function errorPage(err, res) {
  const status = err.statusCode || err.status || 500;
  if (status >= 500) console.error(err);
  if (!res.headersSent) {
    send(res, status, page('Error', `<pre>${escapeHtml(err.error || err.message)}: ${escapeHtml(err.error_description || '')}</pre>`));
  } else {
    res.end();
  }
}

async function main() {
  let handler;
  const server = http.createServer((req, res) => {
    if (!handler) return send(res, 503, page('Starting', 'starting'));
    return Promise.resolve(handler(req, res)).catch((err) => errorPage(err, res));
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port || 0, HOST, resolve);
  });
  const { port } = server.address();
  const provider = new Provider(`http://${HOST}:${port}/${tenant}/v2.0`, providerConfiguration());
  provider.on('server_error', (ctx, err) => console.error('server_error', err));
  handler = route(provider, port);
  process.stdout.write(`LISTENING ${port}\n`);
  // State is in memory only: nothing to flush, and the port must be free at once (rotation).
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
