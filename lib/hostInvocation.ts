// How a script under host/ is run on a docker host: its text is passed to `sh -c` (so stdin stays
// free for data such as secret env lines), its inputs as `env NAME=value` words (ssh servers drop
// unknown environment variables unless AcceptEnv allows them), optionally under sudo.
import { shellQuote } from "./shellQuote";

export interface HostInvocation {
    /** Script text (POSIX sh). */
    script: string;
    /** Name the script sees as $0, shown in `ps` and in its messages. */
    name: string;
    /** Plain (non-secret) inputs. Secrets never go here: pass them on stdin. */
    env: Record<string, string>;
    sudo: boolean;
}

const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;

export function renderHostInvocation(invocation: HostInvocation): string {
    const assignments = Object.entries(invocation.env)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([name, value]) => {
            if (!ENV_NAME.test(name)) throw new Error(`host script ${invocation.name}: invalid variable name ${name}`);
            return `${name}=${shellQuote(value)}`;
        });
    const words = [...(invocation.sudo ? ["sudo", "-n"] : []), "env", ...assignments, "sh", "-c", shellQuote(invocation.script), shellQuote(invocation.name)];
    return words.join(" ");
}
