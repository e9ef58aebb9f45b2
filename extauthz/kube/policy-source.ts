/**
 * Cluster policy source for the ext_authz service: read-only informers on ApiPolicy, Tenant,
 * label-selected Secrets (API-key hashes) and label-selected Secrets and ConfigMaps (revocation
 * lists, portcullis.io/revocation=true). A change (debounced) goes to the policy store, which
 * compiles only objects whose uid/generation changed, keeps a refused object's last good
 * version serving (the operator reports the refusal on its status; ext_authz logs it once), and
 * swaps the snapshot copy-on-write, compiling in slices so Checks keep being answered. Updates
 * that leave the generation alone (status writes, labels, annotations) schedule nothing. Ready
 * only after the first sync; while the API server is unreachable the last snapshot keeps serving.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { ResilientInformer } from '../../kube/informer.js';
import { sourcesFrom, uniqueObjects, type Raw } from '../../kube/objects.js';
import { customPath, listConfigMaps, listCustom, PLURAL, REVOCATION_LABEL, SCHEMA_LABEL } from '../../kube/resources.js';
import { LabelledSecrets } from '../../kube/secrets.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import { generationFingerprint, PolicyStore, type ApplyResult, type StoreInput } from '../policy/store.js';
import { JwksCache } from '../policy/tenants.js';

export interface KubeSourceOptions {
  kubeConfig: KubeConfig;
  log: Logger;
  debounceMs?: number;
  onSnapshot?: (s: PolicySnapshot) => void;
  /** Every apply's result (reports per object), for status and tests. */
  onApplied?: (r: ApplyResult) => void;
  /** The object set each apply hands the store (serve --workers forwards it to every worker). */
  onInput?: (input: StoreInput) => void;
  /** List and watch Secrets only in these namespaces (the chart's extauthz.secretNamespaces); absent: every namespace. */
  secretNamespaces?: readonly string[];
}

/** The fingerprint the store compiles by, for an informer object (uid/generation; spec for Secrets). */
function rawFingerprint(o: Raw): string {
  const m = o.metadata ?? {};
  if (o.kind === 'Secret' || m.generation === undefined) return `${m.uid ?? ''}/${m.resourceVersion ?? ''}`;
  return `${m.uid ?? ''}/${m.generation}`;
}

export class KubernetesPolicySource {
  private timer: NodeJS.Timeout | undefined;
  private readonly store = new PolicyStore({ jwks: new JwksCache(), fingerprint: generationFingerprint });
  /** Fingerprints of the objects last applied, so status-only and label-only updates schedule nothing. */
  private readonly seen = new Map<string, string>();
  private readonly informers: { policies: ResilientInformer<Raw>; tenants: ResilientInformer<Raw>; revocationConfigMaps: ResilientInformer<Raw>; schemaConfigMaps: ResilientInformer<Raw> };
  /** API-key hashes, revocation lists and introspection client secrets: the label-selected Secrets (kube/secrets.ts). */
  private readonly secrets: LabelledSecrets;
  private reported = new Map<string, string>();

  constructor(private readonly opts: KubeSourceOptions) {
    const kc = opts.kubeConfig;
    const common = { kubeConfig: kc, onError: (err: unknown) => opts.log.warn({ err: String(err) }, 'kubernetes watch failed; serving the last snapshot and retrying') };
    const onChange = (kind: string) => (o: Raw, event: 'add' | 'update' | 'delete') => this.changed(kind, o, event);
    this.informers = {
      policies: new ResilientInformer<Raw>({ ...common, onChange: onChange('ApiPolicy'), path: customPath(PLURAL.ApiPolicy), list: listCustom<Raw>(kc, PLURAL.ApiPolicy) }),
      tenants: new ResilientInformer<Raw>({ ...common, onChange: onChange('Tenant'), path: customPath(PLURAL.Tenant), list: listCustom<Raw>(kc, PLURAL.Tenant) }),
      // Revocation lists (Tenant spec.revocation.configMapRef): label-selected ConfigMaps.
      revocationConfigMaps: new ResilientInformer<Raw>({ ...common, onChange: onChange('ConfigMap'), path: '/api/v1/configmaps', list: listConfigMaps(kc, REVOCATION_LABEL), labelSelector: REVOCATION_LABEL }),
      // Request body schemas (ApiPolicy rule request.body.configMapRef): label-selected ConfigMaps.
      schemaConfigMaps: new ResilientInformer<Raw>({ ...common, onChange: onChange('ConfigMap'), path: '/api/v1/configmaps', list: listConfigMaps(kc, SCHEMA_LABEL), labelSelector: SCHEMA_LABEL }),
    };
    this.secrets = new LabelledSecrets({ ...common, onChange: onChange('Secret'), ...(opts.secretNamespaces ? { namespaces: opts.secretNamespaces } : {}) });
  }

  private get all(): ResilientInformer<Raw>[] {
    return [...Object.values(this.informers), ...this.secrets.informers];
  }

  get snapshot(): PolicySnapshot | undefined {
    return this.store.snapshot;
  }

  async start(): Promise<void> {
    await Promise.all(this.all.map((i) => i.start()));
    // Startup: nothing is served yet, so the first compile runs in one go.
    this.applied(this.store.apply(this.tapped()));
  }

  async close(): Promise<void> {
    clearTimeout(this.timer);
    await Promise.all(this.all.map((i) => i.stop()));
  }

  /** An update that leaves uid and generation alone (status, labels, annotations) changes nothing the engine reads. */
  private changed(kind: string, o: Raw, event: 'add' | 'update' | 'delete'): void {
    const id = `${kind} ${o.metadata?.namespace ?? 'default'}/${o.metadata?.name ?? ''}`;
    if (event === 'update' && this.seen.get(id) === rawFingerprint(o)) return;
    this.schedule();
  }

  private schedule(): void {
    if (!this.all.every((i) => i.synced)) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.recompile(), this.opts.debounceMs ?? 50);
  }

  private tapped(): StoreInput {
    const input = this.input();
    this.opts.onInput?.(input);
    return input;
  }

  private input(): StoreInput {
    const { policies, tenants, revocationConfigMaps, schemaConfigMaps } = this.informers;
    const lists = { ApiPolicy: policies.list(), Tenant: tenants.list(), Secret: this.secrets.list(), ConfigMap: uniqueObjects(revocationConfigMaps.list(), schemaConfigMaps.list()) };
    this.seen.clear();
    for (const [kind, list] of Object.entries(lists)) for (const o of list) this.seen.set(`${kind} ${o.metadata?.namespace ?? 'default'}/${o.metadata?.name ?? ''}`, rawFingerprint(o));
    return sourcesFrom(lists.ApiPolicy, lists.Tenant, lists.Secret, lists.ConfigMap);
  }

  private async recompile(): Promise<void> {
    try {
      this.applied(await this.store.applyAsync(this.tapped()));
    } catch (err) {
      this.opts.log.error({ err: String(err) }, 'policy recompile failed; serving the last snapshot');
    }
  }

  /** Logs what changed in the reports (each refusal once, not on every apply), then publishes. */
  private applied(r: ApplyResult): void {
    const next = new Map<string, string>();
    for (const [id, report] of r.reports) {
      const text = [...report.errors, ...report.warnings].map((p) => p.format()).join('\n');
      if (text) next.set(id, text);
      if (text && this.reported.get(id) !== text) {
        const level = report.errors.length > 0 ? 'warn' : 'info';
        this.opts.log[level]({ object: id, serving: report.serving, errors: report.errors.map((p) => p.format()), warnings: report.warnings.map((p) => p.format()) }, report.errors.length > 0 ? 'object refused; its last good version keeps serving when it has one' : 'object has warnings');
      }
    }
    this.reported = next;
    this.opts.onApplied?.(r);
    if (!r.changed) return;
    this.opts.log.info({ version: r.snapshot.version, policies: r.snapshot.size, compiled: r.stats.policiesCompiled, linked: r.stats.policiesLinked, ms: Math.round(r.stats.ms) }, 'policy snapshot loaded from the cluster');
    this.opts.onSnapshot?.(r.snapshot);
  }
}
