/**
 * Cluster policy source for the ext_authz service: read-only informers on ApiPolicy, Tenant and
 * label-selected Secrets (API-key hashes). Any change recompiles (debounced) and swaps the
 * snapshot; broken objects are left out (the operator reports them on their status). Ready only
 * after the first sync; while the API server is unreachable the last snapshot keeps serving.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { ResilientInformer } from '../../kube/informer.js';
import { sourcesFrom, type Raw } from '../../kube/objects.js';
import { API_KEY_SECRET_LABEL, customPath, listCustom, listSecrets, PLURAL } from '../../kube/resources.js';
import { compileSources } from '../policy/compile.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import { JwksCache } from '../policy/tenants.js';

export interface KubeSourceOptions {
  kubeConfig: KubeConfig;
  log: Logger;
  debounceMs?: number;
  onSnapshot?: (s: PolicySnapshot) => void;
}

export class KubernetesPolicySource {
  private current: PolicySnapshot | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly jwks = new JwksCache();
  private readonly informers: { policies: ResilientInformer<Raw>; tenants: ResilientInformer<Raw>; secrets: ResilientInformer<Raw> };

  constructor(private readonly opts: KubeSourceOptions) {
    const kc = opts.kubeConfig;
    const common = { kubeConfig: kc, onChange: () => this.schedule(), onError: (err: unknown) => opts.log.warn({ err: String(err) }, 'kubernetes watch failed; serving the last snapshot and retrying') };
    this.informers = {
      policies: new ResilientInformer<Raw>({ ...common, path: customPath(PLURAL.ApiPolicy), list: listCustom<Raw>(kc, PLURAL.ApiPolicy) }),
      tenants: new ResilientInformer<Raw>({ ...common, path: customPath(PLURAL.Tenant), list: listCustom<Raw>(kc, PLURAL.Tenant) }),
      secrets: new ResilientInformer<Raw>({ ...common, path: '/api/v1/secrets', list: listSecrets(kc, API_KEY_SECRET_LABEL), labelSelector: API_KEY_SECRET_LABEL }),
    };
  }

  get snapshot(): PolicySnapshot | undefined {
    return this.current;
  }

  async start(): Promise<void> {
    await Promise.all(Object.values(this.informers).map((i) => i.start()));
    this.recompile();
  }

  async close(): Promise<void> {
    clearTimeout(this.timer);
    await Promise.all(Object.values(this.informers).map((i) => i.stop()));
  }

  private schedule(): void {
    if (!Object.values(this.informers).every((i) => i.synced)) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.recompile(), this.opts.debounceMs ?? 50);
  }

  private recompile(): void {
    const { policies, tenants, secrets } = this.informers;
    const result = compileSources(sourcesFrom(policies.list(), tenants.list(), secrets.list()), { jwks: this.jwks });
    if (result.problems.length > 0) this.opts.log.warn({ problems: result.problems.map((p) => p.format()) }, 'objects left out of the snapshot');
    this.current = result.snapshot;
    this.opts.log.info({ version: result.snapshot.version, policies: result.snapshot.size }, 'policy snapshot loaded from the cluster');
    this.opts.onSnapshot?.(result.snapshot);
  }
}
