/**
 * The masking engine as a library (`import … from 'portcullis/masking'`), for upstream Node
 * services that do not sit behind Envoy, and for anything that wants to check the directive a
 * request arrived with. The same code runs inside the ext_proc service.
 *
 *   const verifier = new DirectiveVerifier(MaskKey.from(keyBytes));
 *   const claims = verifier.verify(req.headers['x-portcullis-mask'], req.headers['x-request-id'], new Date());
 *   const masked = compileMaskSet(claims, { hashKey }).apply(JSON.parse(body));
 */
export { compileMaskSet, MaskSet, MaskCompileError, normalizeDirective, type MaskSpec, type MaskOptions } from './engine.js';
export { parsePath, select, MaskPathError, type CompiledPath, type PathStep, type Location } from './path.js';
export { pseudonym, MaskActionError, DEFAULT_REPLACEMENT } from './actions.js';
export { DirectiveIssuer, DirectiveVerifier, DirectiveError, MaskKey, MASK_HEADER, TOKEN_TYPE, type DirectiveClaims, type DirectiveFailure, type VerifyOptions, type IssueOptions } from './token.js';
export type { MaskDirective } from '../policy/model.js';
