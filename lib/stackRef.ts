// Stack names as a StackReference needs them. `promoteFrom` may be written `stack`, `project/stack`
// or `org/project/stack`; the short forms take this stack's own organization and project, which the
// engine knows (Pulumi Cloud: the logged-in organization; a file backend: "organization"). So the
// same stack file works on either backend.

const PART = /^[A-Za-z0-9_.-]+$/;

export interface StackRefParts {
    organization?: string;
    project?: string;
    stack: string;
}

/** The parts of `ref`, or undefined when it is not one to three `/`-separated names. */
export function parseStackRef(ref: string): StackRefParts | undefined {
    const parts = ref.split("/");
    if (parts.length > 3 || !parts.every((part) => PART.test(part))) return undefined;
    const [stack, project, organization] = [...parts].reverse();
    return { organization, project, stack };
}

/** `org/project/stack` for `ref`, filling in what a short form leaves out. */
export function fullStackName(ref: string, own: { organization: string; project: string }): string {
    const parts = parseStackRef(ref);
    if (!parts) throw new Error(`"${ref}" is not a stack name: use stack, project/stack or org/project/stack`);
    return `${parts.organization ?? own.organization}/${parts.project ?? own.project}/${parts.stack}`;
}
