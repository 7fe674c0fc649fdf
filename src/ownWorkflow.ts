/**
 * The workflow run an activity works for, as activities reach it: to ask it a
 * Query (where to stop, which loads are done, its budget share) or to describe
 * and signal it. Activity-side only.
 */
import type { Context } from '@temporalio/activity';

/** The activity's own workflow run; undefined for an activity run outside a workflow. */
export function ownWorkflow(context: Context) {
  const execution = context.info.workflowExecution;
  return execution && context.client.workflow.getHandle(execution.workflowId, execution.runId);
}

/** Asks the activity's own workflow run `query`; `orElse` outside a workflow. */
export async function queryOwnWorkflow<T>(context: Context, query: string, orElse: T): Promise<T> {
  const handle = ownWorkflow(context);
  return handle ? handle.query<T>(query) : orElse;
}
