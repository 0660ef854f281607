/** Gateway authentication, OpenFaaS style: basic auth for /system/*, invoke auth for function routes. */
export { loadGatewayAuth, NO_AUTH, SecretFile, type GatewayAuth } from './credentials.js';
export { authorizationConsumed, installAuth, routeGroup, type RouteGroup } from './hook.js';
export { basicAuthenticator, bearerAuthenticator, challenge, parseBasic, parseBearer, REALM, type Authenticator, type Verdict } from './verify.js';
export { installCrossSiteGuard } from './cross-site.js';
