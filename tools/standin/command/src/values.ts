// Property values as the engine sends them to a provider that accepts secrets (the Node SDK's
// provider server says it does): plain JSON, with secrets and unknowns as the wire protocol's
// signature objects and sentinel, untouched by the SDK. These helpers read through them.

const SIG_KEY = "4dabf18193072939515e22adb298388d";
const SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270";
/** The value of an input not known yet (preview). */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

export type Props = Record<string, unknown>;

export function isSecret(value: unknown): value is { value: unknown } {
    return typeof value === "object" && value !== null && (value as Props)[SIG_KEY] === SECRET_SIG;
}

export function makeSecret(value: unknown): unknown {
    return isSecret(value) ? value : { [SIG_KEY]: SECRET_SIG, value };
}

export function isUnknown(value: unknown): boolean {
    return value === UNKNOWN;
}

/** The value with every secret wrapper removed, deeply. */
export function reveal(value: unknown): unknown {
    if (isSecret(value)) return reveal(value.value);
    if (Array.isArray(value)) return value.map(reveal);
    if (typeof value === "object" && value !== null) {
        return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, reveal(v)]));
    }
    return value;
}

export function containsUnknown(value: unknown): boolean {
    if (isUnknown(value)) return true;
    if (isSecret(value)) return containsUnknown(value.value);
    if (Array.isArray(value)) return value.some(containsUnknown);
    if (typeof value === "object" && value !== null) return Object.values(value).some(containsUnknown);
    return false;
}

/**
 * Every string that sits inside a secret, and each of its longer lines: the provider replaces
 * them with [secret] in anything it sends to the engine's log or puts in an error message.
 */
export function secretStrings(value: unknown, inSecret = false): string[] {
    if (isSecret(value)) return secretStrings(value.value, true);
    if (typeof value === "string") {
        if (!inSecret || value.length < 3) return [];
        return [value, ...value.split("\n").map((line) => line.trim()).filter((line) => line.length >= 8 && line !== value)];
    }
    if (Array.isArray(value)) return value.flatMap((v) => secretStrings(v, inSecret));
    if (typeof value === "object" && value !== null) return Object.values(value).flatMap((v) => secretStrings(v, inSecret));
    return [];
}

export function redactor(secrets: string[]): (text: string) => string {
    const longestFirst = [...new Set(secrets)].sort((a, b) => b.length - a.length);
    return (text) => longestFirst.reduce((out, secret) => out.split(secret).join("[secret]"), text);
}

export function deepEqual(a: unknown, b: unknown): boolean {
    if (a === b) return true;
    if (Array.isArray(a) || Array.isArray(b)) {
        return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((v, i) => deepEqual(v, b[i]));
    }
    if (typeof a === "object" && a !== null && typeof b === "object" && b !== null) {
        const ka = Object.keys(a).filter((k) => (a as Props)[k] !== undefined && (a as Props)[k] !== null);
        const kb = Object.keys(b).filter((k) => (b as Props)[k] !== undefined && (b as Props)[k] !== null);
        return ka.length === kb.length && ka.every((k) => deepEqual((a as Props)[k], (b as Props)[k]));
    }
    return false;
}

/** `present` is false for absent and null inputs (the SDK sends undefined ones as absent). */
export function present(props: Props, key: string): boolean {
    return props[key] !== undefined && props[key] !== null;
}

/** Go's %q for the strings the real provider quotes in its error messages. */
export function goQuote(text: string): string {
    const named: Record<string, string> = { "\u0007": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v", "\\": "\\\\", '"': '\\"' };
    let out = '"';
    for (const ch of text) {
        const code = ch.codePointAt(0) ?? 0;
        if (named[ch]) out += named[ch];
        else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, "0")}`;
        else if (code >= 0x80 && code < 0xa0) out += `\\u${code.toString(16).padStart(4, "0")}`;
        else out += ch;
    }
    return `${out}"`;
}
