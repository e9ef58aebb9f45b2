/**
 * The policy source of a worker thread in `serve --workers`: the primary's source (folder or
 * Kubernetes) reads the objects once and forwards every object set it hands its own store; each
 * worker compiles the same set into its own store (compiled CEL programs and regexes cannot cross
 * threads), so all workers serve what the primary reports, without N watches on the folder or
 * the API server.
 */
import { PolicyError, type ErrorCode, type Severity, type SourceLocation } from '../errors.js';
import { generationFingerprint, PolicyStore, type StoreInput } from '../policy/store.js';
import type { PolicySnapshot } from '../policy/snapshot.js';
import { JwksCache, type RevocationFile } from '../policy/tenants.js';
import type { PolicySourceHandle } from './serve.js';

interface WireProblem {
  code: ErrorCode;
  message: string;
  location: SourceLocation;
  severity: Severity;
}

/**
 * A StoreInput as structured-clone data: everything the primary's store reads (tenants, policies,
 * Secrets, ConfigMaps, revocation files, broken objects), so a worker compiles exactly what the
 * primary does. Errors cross as plain fields (clone drops their class); maps cross as entries.
 * Nothing is checked again here: the primary's source read the objects within its bounds, and the
 * worker's store compiles them with the same bounds the primary's does.
 */
export interface WireInput {
  tenants: StoreInput['tenants'];
  policies: StoreInput['policies'];
  secrets: StoreInput['secrets'];
  /** Revocation lists and body schemas held in ConfigMaps (absent: none). */
  configMaps?: NonNullable<StoreInput['configMaps']>;
  /** Folder mode's revocation files by path (absent: not a folder, so revocation.file is refused, as in the primary). */
  files?: [string, RevocationFile][];
  broken: [string, WireProblem[]][];
}

/**
 * How each StoreInput field reaches the workers; a field added to StoreInput does not compile
 * until it is named here, so no input the primary compiles can be left behind again.
 * policyChanges is a hint by array identity (`since`), which no clone keeps: the worker's store
 * scans the policies, as it does without a hint, and decides the same.
 */
export const WIRE_FIELDS = { tenants: 'forwarded', policies: 'forwarded', secrets: 'forwarded', configMaps: 'forwarded', files: 'forwarded', broken: 'forwarded', policyChanges: 'hint, not forwarded' } as const satisfies Record<keyof StoreInput, string>;

export type Fingerprint = 'spec' | 'generation';

export function toWire(input: StoreInput): WireInput {
  const broken: [string, WireProblem[]][] = [];
  for (const [id, problems] of input.broken ?? []) {
    broken.push([id, problems.map((p) => ({ code: p.code, message: p.message, location: p.location, severity: p.severity }))]);
  }
  return {
    tenants: input.tenants,
    policies: input.policies,
    secrets: input.secrets,
    ...(input.configMaps ? { configMaps: input.configMaps } : {}),
    ...(input.files ? { files: [...input.files] } : {}),
    broken,
  };
}

export function fromWire(w: WireInput): StoreInput {
  const broken = new Map<string, PolicyError[]>();
  for (const [id, problems] of w.broken) broken.set(id, problems.map((p) => new PolicyError(p.code, p.message, p.location, { severity: p.severity })));
  return {
    tenants: w.tenants,
    policies: w.policies,
    secrets: w.secrets,
    ...(w.configMaps ? { configMaps: w.configMaps } : {}),
    ...(w.files ? { files: new Map(w.files) } : {}),
    broken,
  };
}

export class ForwardedPolicySource implements PolicySourceHandle {
  private readonly store: PolicyStore;
  private readonly listeners: ((s: PolicySnapshot) => void)[] = [];
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly initial: WireInput | undefined,
    fingerprint: Fingerprint,
    private readonly onError: (err: unknown) => void,
  ) {
    this.store = new PolicyStore({ jwks: new JwksCache(), ...(fingerprint === 'generation' ? { fingerprint: generationFingerprint } : {}) });
  }

  get snapshot(): PolicySnapshot | undefined {
    return this.store.snapshot;
  }

  /** Every subscriber hears every later snapshot (the server's health and metrics, the worker's readiness report). */
  subscribe(onSnapshot: (s: PolicySnapshot) => void): void {
    this.listeners.push(onSnapshot);
  }

  /** The set the primary had when this worker started: compiled in one go, nothing is served yet. */
  start(): Promise<void> {
    if (this.initial) this.store.apply(fromWire(this.initial));
    return Promise.resolve();
  }

  /** A later set: compiled in slices like the primary's, applied in arrival order. */
  push(input: WireInput): Promise<void> {
    this.queue = this.queue.then(async () => {
      try {
        const r = await this.store.applyAsync(fromWire(input));
        if (r.changed) for (const listener of this.listeners) listener(r.snapshot);
      } catch (err) {
        this.onError(err);
      }
    });
    return this.queue;
  }

  close(): void {}
}
