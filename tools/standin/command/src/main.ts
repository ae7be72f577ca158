// Entry point of the stand-in pulumi-resource-command plugin: the Node SDK's provider server
// (gRPC on a loopback port it prints to stdout for the engine), serving the provider in
// provider.ts, reporting version 1.2.1. Nothing else may write to stdout.
import { main } from "@pulumi/pulumi/provider";
import { EngineLog, engineAddressFromArgs } from "./engineLog";
import { makeProvider } from "./provider";

const args = process.argv.slice(2);
main(makeProvider(new EngineLog(engineAddressFromArgs(args))), args).catch((error: unknown) => {
    process.stderr.write(`pulumi-resource-command (stand-in): ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
});
