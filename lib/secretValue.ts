// Holds a secret config value between validation and the point where it becomes a Pulumi secret.
// It prints as [secret] everywhere (logs, JSON, error messages), so the plain value can only leave
// through reveal(), which the resource layer wraps in pulumi.secret().
export class SecretValue {
    readonly #value: string;

    constructor(value: string) {
        this.#value = value;
    }

    reveal(): string {
        return this.#value;
    }

    toString(): string {
        return "[secret]";
    }

    toJSON(): string {
        return "[secret]";
    }

    [Symbol.for("nodejs.util.inspect.custom")](): string {
        return "[secret]";
    }
}
