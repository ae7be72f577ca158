// Reads a stack's outputs (this stack's own, or the promotion source's) as plain values before any
// resource is declared. Secret outputs are unwrapped here and only used for planning.
import * as pulumi from "@pulumi/pulumi";
import { OUTPUT_NAMES } from "../lib/previousState";
import { fullStackName } from "../lib/stackRef";

export async function readStackOutputs(resourceName: string, stackName: string): Promise<Record<string, unknown>> {
    const reference = new pulumi.StackReference(resourceName, { name: stackName });
    const outputs: Record<string, unknown> = {};
    for (const name of Object.values(OUTPUT_NAMES)) {
        const details = await reference.getOutputDetails(name);
        const value = details.value ?? details.secretValue;
        if (value !== undefined) outputs[name] = value;
    }
    return outputs;
}

/** This stack's organization as the engine reports it (a local file backend's is "organization"). */
export function ownOrganization(): string {
    try {
        return pulumi.getOrganization() || "organization";
    } catch {
        // Older engines and the local backend do not report one.
        return "organization";
    }
}

/** This stack, as a StackReference names it. */
export function ownStackName(): string {
    return `${ownOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}`;
}

/** `org/project/stack` of a stack named in config, short forms taken relative to this stack. */
export function stackNameFromConfig(ref: string): string {
    return fullStackName(ref, { organization: ownOrganization(), project: pulumi.getProject() });
}
