// Messages to the engine's log (the "host logging" a provider has): the engine's Log RPC at the
// address it starts the plugin with, in order. The real provider sends a command's output lines as
// ephemeral info ("status") messages attached to the resource; so does this one.
import * as grpc from "@grpc/grpc-js";
import { EngineClient } from "@pulumi/pulumi/proto/engine_grpc_pb";
import { LogRequest, LogSeverity } from "@pulumi/pulumi/proto/engine_pb";

export type Severity = "debug" | "info" | "warning" | "error";

const severities: Record<Severity, LogSeverity> = {
    debug: LogSeverity.DEBUG,
    info: LogSeverity.INFO,
    warning: LogSeverity.WARNING,
    error: LogSeverity.ERROR,
};

export class EngineLog {
    private client?: EngineClient;
    private last: Promise<void> = Promise.resolve();

    constructor(engineAddress: string | undefined) {
        if (engineAddress) this.client = new EngineClient(engineAddress, grpc.credentials.createInsecure());
    }

    /** Queues a message; `flushed` resolves once every queued message has been delivered. */
    log(severity: Severity, message: string, urn: string, ephemeral: boolean): void {
        const client = this.client;
        this.last = this.last.then(
            () =>
                new Promise<void>((resolve) => {
                    if (!client) {
                        process.stderr.write(`${severity}: ${message}\n`);
                        resolve();
                        return;
                    }
                    const request = new LogRequest();
                    request.setSeverity(severities[severity]);
                    request.setMessage(message);
                    request.setUrn(urn);
                    request.setStreamid(0);
                    request.setEphemeral(ephemeral);
                    client.log(request, () => resolve());
                }),
        );
    }

    flushed(): Promise<void> {
        return this.last;
    }
}

/** The engine address among the plugin's arguments (the engine may add logging flags before it). */
export function engineAddressFromArgs(args: string[]): string | undefined {
    const rest: string[] = [];
    for (let i = 0; i < args.length; i++) {
        if (args[i] === "--logtostderr" || args[i].startsWith("-v=")) continue;
        if (args[i] === "--tracing") {
            i++;
            continue;
        }
        rest.push(args[i]);
    }
    return rest[0];
}
