// The worker handover of a release plan: only the live colour runs a worker (Medusa's scheduled
// jobs and subscribers), so once traffic has moved, the other colour's worker is stopped before the
// live colour's starts. Pure, so what each plan hands over is tested without Pulumi.
import { Colour, otherColour } from "./colour";
import { HostNames } from "./hostNames";
import { ReleasePlan } from "./releasePlan";

/** Seconds a worker gets after SIGTERM to finish its jobs before it is killed (the containers' destroyGraceSeconds too). */
export const WORKER_DRAIN_SECONDS = 30;

export interface WorkerHandoverPlan {
    /** The colour whose worker is stopped: the one that does not serve traffic after this deploy. */
    from: Colour;
    /** The colour whose worker starts once `from`'s is stopped: the live one. */
    to: Colour;
    /** The release `to` runs. */
    release: string;
    /**
     * False when traffic does not move ("unchanged", "stage-idle"): the handover is declared exactly as
     * the deploy that made `to` live declared it, so it does not run again.
     */
    switching: boolean;
}

/**
 * Every plan hands the worker over to its live colour. On the first deploy there is no other colour
 * yet, so its worker is absent and nothing is stopped; declaring the handover anyway means a later
 * unchanged deploy, or one that comes back to this colour, sees the same resource.
 */
export function planWorkerHandover(plan: ReleasePlan): WorkerHandoverPlan {
    const release = plan.colours[plan.live]?.release;
    if (release === undefined) throw new Error(`internal: plan makes ${plan.live} live but declares no release for it`);
    return { from: otherColour(plan.live), to: plan.live, release, switching: plan.live !== plan.previousLive };
}

export interface StopWorkerInputs {
    handover: WorkerHandoverPlan;
    names: HostNames;
    /** @default WORKER_DRAIN_SECONDS */
    drainSeconds?: number;
}

/** The environment of host/stop-worker.sh for a handover. */
export function stopWorkerEnv(inputs: StopWorkerInputs): Record<"WORKER_NAME" | "NEXT_WORKER" | "WORKER_DRAIN_SECONDS", string> {
    const drain = inputs.drainSeconds ?? WORKER_DRAIN_SECONDS;
    if (!Number.isInteger(drain) || drain < 0 || drain > 3600) {
        throw new Error(`worker handover: drainSeconds ${JSON.stringify(drain)} is invalid: expected a whole number of seconds from 0 to 3600`);
    }
    return {
        WORKER_NAME: inputs.names.worker(inputs.handover.from),
        NEXT_WORKER: inputs.names.worker(inputs.handover.to),
        WORKER_DRAIN_SECONDS: String(drain),
    };
}
