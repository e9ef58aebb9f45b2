/**
 * The shape phase's masking step: pick the rule's prepared directive set for the principal, sign
 * it for this request, and put it where the data plane reads it (the x-portcullis-mask request
 * header and the `portcullis` dynamic metadata), with a readable summary for audit and explain.
 */
import type { CompiledRule } from '../policy/compile.js';
import type { PrincipalType } from '../policy/model.js';
import type { Decision } from '../pipeline/decision.js';
import { masksFor } from './policy.js';
import { MASK_HEADER, type DirectiveIssuer } from './token.js';

/** The parts of the shape input masking needs (the pipeline state fits as it is). */
export interface AttachInput {
  authz?: { rule?: CompiledRule };
  principal?: { type: PrincipalType };
  directives?: DirectiveIssuer;
  now?: Date;
}

/** Adds the signed directive to an allow decision (every allow carries one, even an empty set). */
export function attachMaskDirective(d: Decision, input: AttachInput): void {
  const prepared = masksFor(input.authz?.rule?.masking, input.principal?.type);
  d.audit.masks = prepared?.summary ?? [];
  d.metadata.masks = d.audit.masks;
  if (input.directives) {
    const token = input.directives.issue(prepared?.tail ?? '"masks":[]}', d.requestId, input.now ?? new Date());
    d.headers[MASK_HEADER] = token;
    d.metadata.maskDirective = token;
  }
  // A header Portcullis sets must not also be listed for removal: if the data plane removed after
  // setting, the client's spoofed copy would take our directive with it.
  d.removeHeaders = d.removeHeaders.filter((h) => !(h in d.headers));
}
