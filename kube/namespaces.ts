/** Namespace lists from flags (--secret-namespaces of both processes). No client-node import: extauthz/config.ts loads this, in worker threads too. */
import { PortcullisError } from '../extauthz/errors.js';

const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** A comma-separated list of namespace names; empty entries are ignored, duplicates dropped. */
export function parseNamespaces(flag: string, v: string): string[] {
  const list = v.split(',').map((s) => s.trim()).filter(Boolean);
  for (const ns of list) if (!NAMESPACE.test(ns)) throw new PortcullisError('USAGE', `${flag}: "${ns}" is not a namespace name`);
  return [...new Set(list)];
}
