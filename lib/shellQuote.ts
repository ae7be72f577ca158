/** Quotes a value for POSIX sh: the result is one word whatever the value contains. */
export function shellQuote(value: string): string {
    return `'${value.replace(/'/g, `'\\''`)}'`;
}
