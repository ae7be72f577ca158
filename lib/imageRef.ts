/**
 * The registry host of an image reference, as Docker reads it: the first path component when it
 * looks like a host (has a dot or a port, or is localhost), else Docker Hub.
 * @example registryHostOf("registry.example.com/shop/medusa:A@sha256:…") === "registry.example.com"
 */
export function registryHostOf(reference: string): string {
    const first = reference.split("/")[0];
    return reference.includes("/") && (/[.:]/.test(first) || first === "localhost") ? first : "docker.io";
}
