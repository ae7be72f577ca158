// Reads a stack's outputs (this stack's own, or the promotion source's) as plain values before any
// resource is declared. Secret outputs are unwrapped here and only used for planning.
import * as pulumi from "@pulumi/pulumi";
import { OUTPUT_NAMES } from "../lib/previousState";

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

/** This stack, as a StackReference names it (a local file backend's organization is "organization"). */
export function ownStackName(): string {
    let organization = "organization";
    try {
        organization = pulumi.getOrganization() || organization;
    } catch {
        // Older engines and the local backend do not report one.
    }
    return `${organization}/${pulumi.getProject()}/${pulumi.getStack()}`;
}
