/**
 * The Secrets Portcullis reads, for both processes: one label-selected list+watch per label in
 * SECRET_LABELS, cluster-wide or, when the grant is narrowed to namespaces (chart value
 * extauthz.secretNamespaces), one per label and namespace, since a RoleBinding in a namespace
 * allows no cluster-wide list. Never an unselected list of Secrets.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { ResilientInformer, type ChangeEvent } from './informer.js';
import { uniqueObjects, type Raw } from './objects.js';
import { listSecrets, SECRET_LABELS, secretsPath } from './resources.js';

export interface SecretInformerOptions {
  kubeConfig: KubeConfig;
  /** Watch only these namespaces; absent or empty: every namespace. */
  namespaces?: readonly string[];
  /** `old`: the cached object an update or delete replaces. */
  onChange: (obj: Raw, event: ChangeEvent, old?: Raw) => void;
  onError: (err: unknown) => void;
  /** What the cache keeps of each Secret (the operator keeps stand-ins, never the values). */
  transform?: (obj: Raw) => Raw;
}

export class LabelledSecrets {
  readonly informers: readonly ResilientInformer<Raw>[];

  constructor(opts: SecretInformerOptions) {
    const scopes: (string | undefined)[] = opts.namespaces && opts.namespaces.length > 0 ? [...new Set(opts.namespaces)] : [undefined];
    this.informers = SECRET_LABELS.flatMap((label) =>
      scopes.map(
        (ns) =>
          new ResilientInformer<Raw>({
            kubeConfig: opts.kubeConfig, path: secretsPath(ns), labelSelector: label, list: listSecrets(opts.kubeConfig, label, ns),
            onChange: opts.onChange, onError: opts.onError, ...(opts.transform ? { transform: opts.transform } : {}),
          }),
      ),
    );
  }

  get synced(): boolean {
    return this.informers.every((i) => i.synced);
  }

  /** Every cached Secret once (one may carry several labels). */
  list(): Raw[] {
    return uniqueObjects(...this.informers.map((i) => i.list()));
  }

  async start(): Promise<void> {
    await Promise.all(this.informers.map((i) => i.start()));
  }

  async stop(): Promise<void> {
    await Promise.all(this.informers.map((i) => i.stop()));
  }
}
