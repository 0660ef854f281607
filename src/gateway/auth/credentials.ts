import type { SecurityConfig } from '../../config/index.js';
import { readMountedSecret, readMountedSecretLines } from '../../config/secrets.js';
import { ConfigError } from '../../errors.js';
import { basicAuthenticator, bearerAuthenticator, type Authenticator } from './verify.js';

/** Secret file names under `secret_mount_path`, as OpenFaaS names them. */
export const SecretFile = {
  basicAuthUser: 'basic-auth-user',
  basicAuthPassword: 'basic-auth-password',
  invokeTokens: 'invoke-tokens',
} as const;

/** Who may use which routes; an absent authenticator leaves its routes open. */
export interface GatewayAuth {
  /** `/system/*` and `/async-function/<call-id>` (status, cancel): basic auth when `basic_auth` is on. */
  readonly admin?: Authenticator | undefined;
  /** `/function/*` and `POST /async-function/*`: per `invoke_auth`. */
  readonly invoke?: Authenticator | undefined;
}

/** No authentication anywhere (the default, as in OpenFaaS without basic_auth). */
export const NO_AUTH: GatewayAuth = Object.freeze({});

/**
 * Reads the secrets the auth settings need, once, when the gateway starts. A missing or empty
 * secret file stops startup with a ConfigError naming every missing file and the setting needing it.
 */
export async function loadGatewayAuth(security: Pick<SecurityConfig, 'secretMountPath' | 'basicAuth' | 'invokeAuth'>): Promise<GatewayAuth> {
  const { secretMountPath: dir, basicAuth, invokeAuth } = security;
  const problems: string[] = [];
  const collect = async <T>(read: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await read();
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      problems.push(...err.problems);
      return undefined;
    }
  };

  let basic: Authenticator | undefined;
  if (basicAuth || invokeAuth === 'basic') {
    const setting = [basicAuth ? 'basic_auth=true' : undefined, invokeAuth === 'basic' ? 'invoke_auth=basic' : undefined].filter((s) => s !== undefined).join(' and ');
    const user = await collect(() => readMountedSecret(dir, SecretFile.basicAuthUser, setting));
    const password = await collect(() => readMountedSecret(dir, SecretFile.basicAuthPassword, setting));
    if (user !== undefined && password !== undefined) basic = basicAuthenticator(user, password);
  }
  let bearer: Authenticator | undefined;
  if (invokeAuth === 'bearer') {
    const tokens = await collect(() => readMountedSecretLines(dir, SecretFile.invokeTokens, 'invoke_auth=bearer'));
    if (tokens !== undefined) bearer = bearerAuthenticator(tokens);
  }
  if (problems.length > 0) throw new ConfigError(problems);

  return Object.freeze({
    admin: basicAuth ? basic : undefined,
    invoke: invokeAuth === 'basic' ? basic : invokeAuth === 'bearer' ? bearer : undefined,
  });
}
