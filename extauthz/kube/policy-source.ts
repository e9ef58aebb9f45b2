/**
 * Cluster policy source for the ext_authz service: read-only informers on ApiPolicy, Tenant,
 * label-selected Secrets (API-key hashes, revocation lists, introspection client secrets) and
 * label-selected ConfigMaps (revocation lists, portcullis.io/revocation=true; body schemas,
 * portcullis.io/schema=true). A change (debounced) goes to the policy store, which
 * compiles only objects whose uid/generation changed, keeps a refused object's last good
 * version serving (the operator reports the refusal on its status; ext_authz logs it once), and
 * swaps the snapshot copy-on-write, compiling in slices so Checks keep being answered. Updates
 * that leave the generation alone (status writes, labels, annotations) schedule nothing; each
 * informer object is converted once, so the store knows unchanged ones by identity. Ready
 * only after the first sync; while the API server is unreachable the last snapshot keeps serving.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { ResilientInformer } from '../../kube/informer.js';
import { ConvertedObjects, decisionView, SourceConverter, uniqueObjects, type Raw } from '../../kube/objects.js';
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

/** The version the store compiles by, for an informer object: uid/generation, or uid/resourceVersion for objects without a generation (Secrets, ConfigMaps). */
function rawFingerprint(o: Raw): string {
  const m = o.metadata ?? {};
  if (o.kind === 'Secret' || m.generation === undefined) return `${m.uid ?? ''}/${m.resourceVersion ?? ''}`;
  return `${m.uid ?? ''}/${m.generation}`;
}

/**
 * Whether an informer event can change what the engine compiles. An update that keeps uid and
 * metadata.generation (a status write, a label or an annotation: the API server bumps generation
 * for spec changes only, and the compiler reads neither labels nor annotations nor status)
 * changes nothing, so it schedules no run; adds, deletes and Secret or ConfigMap updates do.
 */
export function affectsCompile(event: 'add' | 'update' | 'delete', obj: Raw, old: Raw | undefined): boolean {
  return event !== 'update' || old === undefined || rawFingerprint(old) !== rawFingerprint(obj);
}

export class KubernetesPolicySource {
  private timer: NodeJS.Timeout | undefined;
  private readonly store = new PolicyStore({ jwks: new JwksCache(), fingerprint: generationFingerprint });
  /** Tenants, Secrets and ConfigMaps: converted on use, once per object version. */
  private readonly converter = new SourceConverter();
  /** ApiPolicies, the one large set: converted as their events arrive (see ConvertedObjects). */
  private readonly policySources = ConvertedObjects.policies();
  private readonly informers: { policies: ResilientInformer<Raw>; tenants: ResilientInformer<Raw>; revocationConfigMaps: ResilientInformer<Raw>; schemaConfigMaps: ResilientInformer<Raw> };
  /** API-key hashes, revocation lists and introspection client secrets: the label-selected Secrets (kube/secrets.ts). */
  private readonly secrets: LabelledSecrets;
  /** What was last logged per object with errors or warnings. */
  private readonly reported = new Map<string, string>();

  constructor(private readonly opts: KubeSourceOptions) {
    const kc = opts.kubeConfig;
    // Every cache holds only the fields the conversion reads (no status, annotations or managedFields).
    const common = { kubeConfig: kc, transform: decisionView, onError: (err: unknown) => opts.log.warn({ err: String(err) }, 'kubernetes watch failed; serving the last snapshot and retrying') };
    const onChange = (o: Raw, event: 'add' | 'update' | 'delete', old?: Raw): void => this.changed(o, event, old);
    const onPolicy = (o: Raw, event: 'add' | 'update' | 'delete', old?: Raw): void => {
      this.policySources.changed(o, event);
      this.changed(o, event, old);
    };
    this.informers = {
      policies: new ResilientInformer<Raw>({ ...common, onChange: onPolicy, path: customPath(PLURAL.ApiPolicy), list: listCustom<Raw>(kc, PLURAL.ApiPolicy) }),
      tenants: new ResilientInformer<Raw>({ ...common, onChange, path: customPath(PLURAL.Tenant), list: listCustom<Raw>(kc, PLURAL.Tenant) }),
      // Revocation lists (Tenant spec.revocation.configMapRef): label-selected ConfigMaps.
      revocationConfigMaps: new ResilientInformer<Raw>({ ...common, onChange, path: '/api/v1/configmaps', list: listConfigMaps(kc, REVOCATION_LABEL), labelSelector: REVOCATION_LABEL }),
      // Request body schemas (ApiPolicy rule request.body.configMapRef): label-selected ConfigMaps.
      schemaConfigMaps: new ResilientInformer<Raw>({ ...common, onChange, path: '/api/v1/configmaps', list: listConfigMaps(kc, SCHEMA_LABEL), labelSelector: SCHEMA_LABEL }),
    };
    this.secrets = new LabelledSecrets({ ...common, onChange, ...(opts.secretNamespaces ? { namespaces: opts.secretNamespaces } : {}) });
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

  private changed(o: Raw, event: 'add' | 'update' | 'delete', old: Raw | undefined): void {
    if (affectsCompile(event, o, old)) this.schedule();
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
    const { tenants, revocationConfigMaps, schemaConfigMaps } = this.informers;
    const rest = this.converter.sourcesFrom([], tenants.list(), this.secrets.list(), uniqueObjects(revocationConfigMaps.list(), schemaConfigMaps.list()));
    // What changed since the previous input, from the watch events: the store then visits only
    // those policies. The store only reads the array, shared with later inputs until a policy changes.
    const { values, changes } = this.policySources.take();
    return { ...rest, policies: values as StoreInput['policies'], ...(changes ? { policyChanges: changes } : {}) };
  }

  private async recompile(): Promise<void> {
    try {
      this.applied(await this.store.applyAsync(this.tapped()));
    } catch (err) {
      this.opts.log.error({ err: String(err) }, 'policy recompile failed; serving the last snapshot');
    }
  }

  /** Logs what changed in the reports the run touched (each refusal once, not on every apply), then publishes. */
  private applied(r: ApplyResult): void {
    for (const id of r.changedReports) {
      const report = r.reports.get(id);
      const text = report ? [...report.errors, ...report.warnings].map((p) => p.format()).join('\n') : '';
      if (!report || !text) {
        this.reported.delete(id);
        continue;
      }
      if (this.reported.get(id) === text) continue;
      this.reported.set(id, text);
      const level = report.errors.length > 0 ? 'warn' : 'info';
      this.opts.log[level]({ object: id, serving: report.serving, errors: report.errors.map((p) => p.format()), warnings: report.warnings.map((p) => p.format()) }, report.errors.length > 0 ? 'object refused; its last good version keeps serving when it has one' : 'object has warnings');
    }
    this.opts.onApplied?.(r);
    if (!r.changed) return;
    this.opts.log.info({ version: r.snapshot.version, policies: r.snapshot.size, compiled: r.stats.policiesCompiled, linked: r.stats.policiesLinked, ms: Math.round(r.stats.ms) }, 'policy snapshot loaded from the cluster');
    this.opts.onSnapshot?.(r.snapshot);
  }
}
