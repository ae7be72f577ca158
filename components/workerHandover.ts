// WorkerHandover: once the traffic switch has succeeded, stops the worker of the colour that no
// longer serves (host/stop-worker.sh: SIGTERM, a bounded drain, then SIGKILL), so the live colour's
// worker, which waits for it, never runs at the same time. A failed switch never gets here: the old
// worker keeps running. A failed stop fails `up` and the new worker does not start. The stopped
// container is removed by the engine at the end of the same `up` (no colour declares it any more).
import * as command from "@pulumi/command";
import * as pulumi from "@pulumi/pulumi";
import { HostNames } from "../lib/hostNames";
import { ReleasePlan } from "../lib/releasePlan";
import { planWorkerHandover, stopWorkerEnv, WORKER_DRAIN_SECONDS } from "../lib/workerHandover";
import { DockerHost } from "./dockerHost";

export interface WorkerHandoverArgs {
    plan: ReleasePlan;
    names: HostNames;
    host: DockerHost;
    /** Identity of the live colour's server, as the switch's trigger has it: a new server means a new switch. */
    targetServerId: pulumi.Input<string>;
    /**
     * Seconds the old worker gets after SIGTERM to finish its jobs before it is killed.
     * @default 30
     */
    drainSeconds?: number;
    /** The traffic switch: nothing is stopped until it has succeeded. */
    after: pulumi.Resource[];
}

export class WorkerHandover extends pulumi.ComponentResource {
    readonly command: command.local.Command | command.remote.Command;
    /**
     * Changes every time the handover runs (the command's id is new at each create), and only then.
     * The live worker is replaced when it changes (ColourSet.addWorker): a worker that an earlier
     * handover stopped, and that a failed `up` left in the state, is started afresh when its colour
     * goes live again instead of being kept, stopped, as "unchanged".
     */
    readonly generation: pulumi.Output<string>;

    constructor(name: string, args: WorkerHandoverArgs, opts?: pulumi.ComponentResourceOptions) {
        super("medusa-deploy:index:WorkerHandover", name, {}, opts);
        const handover = planWorkerHandover(args.plan);
        this.command = args.host.runScript(
            "stop-worker",
            {
                script: "stop-worker",
                env: stopWorkerEnv({ handover, names: args.names, drainSeconds: args.drainSeconds ?? WORKER_DRAIN_SECONDS }),
                // What makes the switch run again makes the handover run again (release included, for
                // the record); an unchanged plan gives the same values, so nothing runs.
                triggers: [handover.to, handover.release, args.targetServerId],
            },
            {
                parent: this,
                dependsOn: args.after,
                // On an unchanged plan a new version of the script alone (triggers[0], its hash) must
                // not replace the command: that would change `generation` and restart the live worker.
                // Its other triggers still count: a handover left by another switch runs again.
                ignoreChanges: handover.switching ? [] : ["triggers[0]"],
            },
        );
        this.generation = this.command.id;
        this.registerOutputs({});
    }
}
