// How a script under host/ is run on a docker host: its inputs as `env NAME=value` words (ssh servers
// drop unknown environment variables unless AcceptEnv allows them), optionally under sudo, and its
// text either as the `sh -c` argument (the operator tools) or on stdin ahead of the script's own
// data (what the deploy's commands do, renderStdinHostInvocation).
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

function prefixWords(invocation: Omit<HostInvocation, "script">): string[] {
    const assignments = Object.entries(invocation.env)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([name, value]) => {
            if (!ENV_NAME.test(name)) throw new Error(`host script ${invocation.name}: invalid variable name ${name}`);
            return `${name}=${shellQuote(value)}`;
        });
    return [...(invocation.sudo ? ["sudo", "-n"] : []), "env", ...assignments];
}

export function renderHostInvocation(invocation: HostInvocation): string {
    return [...prefixWords(invocation), "sh", "-c", shellQuote(invocation.script), shellQuote(invocation.name)].join(" ");
}

export interface StdinHostInvocation {
    /** The command line: env words and a loader of a few lines, whatever the script's size. */
    command: string;
    /** What stdin must start with: the script's lines; the script's own data (if any) follows. */
    stdinPrefix: string;
}

/**
 * The script travels on stdin, ahead of its data, and a short loader reads exactly its lines (the
 * shell's `read` takes a byte at a time from a pipe, so the data after them is left for the
 * script) and evaluates them. Why not `sh -c <script>`: a provider's error quotes the whole command
 * line before the command's output, and with the libraries inlined a script is tens of kilobytes,
 * so the reason it failed was cut off the end of the message.
 */
export function renderStdinHostInvocation(invocation: HostInvocation): StdinHostInvocation {
    const text = invocation.script.endsWith("\n") ? invocation.script : `${invocation.script}\n`;
    const lines = text.split("\n").length - 1;
    const loader = [
        `__mdn=${lines} __mds=`,
        `while [ "$__mdn" -gt 0 ] && IFS= read -r __mdl; do __mds="$__mds$__mdl\n"; __mdn=$((__mdn - 1)); done`,
        `[ "$__mdn" -eq 0 ] || { echo "$0: the script did not arrive whole on stdin ($__mdn lines missing); nothing ran" >&2; exit 2; }`,
        `unset __mdn __mdl`,
        `eval "$__mds"`,
    ].join("\n");
    return { command: [...prefixWords(invocation), "sh", "-c", shellQuote(loader), shellQuote(invocation.name)].join(" "), stdinPrefix: text };
}
