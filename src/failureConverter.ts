/**
 * Loaded by path (src/codec.ts) into workers' workflow bundles and clients when FERRY_PAYLOAD_KEY is set:
 * failure messages and stack traces travel as encoded (encrypted) attributes, not as plain text in history.
 */
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
