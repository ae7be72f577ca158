// The two release slots of a blue/green deployment.
export const COLOURS = ["blue", "green"] as const;
export type Colour = (typeof COLOURS)[number];

export function isColour(value: unknown): value is Colour {
    return value === "blue" || value === "green";
}

export function otherColour(colour: Colour): Colour {
    return colour === "blue" ? "green" : "blue";
}
