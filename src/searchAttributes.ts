/**
 * The search attributes ferry's workflows set, so `temporal workflow list --query`
 * and the Web UI can filter runs. Workflow-safe: imports only @temporalio/common.
 * The local stack registers them at start; on a real cluster register them once
 * with `temporal operator search-attribute create` (docs/configuration.md).
 */
import { defineSearchAttributeKey, SearchAttributeType } from '@temporalio/common';

export const FerryPhase = defineSearchAttributeKey('FerryPhase', SearchAttributeType.KEYWORD);
export const FerryPercent = defineSearchAttributeKey('FerryPercent', SearchAttributeType.DOUBLE);
export const FerryKind = defineSearchAttributeKey('FerryKind', SearchAttributeType.KEYWORD);

/** Name → type as `temporal server start-dev --search-attribute NAME=TYPE` spells it. */
export const FERRY_SEARCH_ATTRIBUTES: Record<string, string> = {
  FerryPhase: 'Keyword',
  FerryPercent: 'Double',
  FerryKind: 'Keyword',
};
