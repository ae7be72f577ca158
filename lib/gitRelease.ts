// `release: auto` in a building stack: the app's git commit, with a suffix naming the uncommitted
// changes so two different dirty trees never share a release name (and the same dirty tree does).
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as path from "node:path";

function git(appPath: string, args: string[]): string {
    return execFileSync("git", ["-C", appPath, ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 256 * 1024 * 1024 });
}

export function gitRelease(appPath: string): string {
    let commit: string;
    try {
        commit = git(appPath, ["rev-parse", "--short=12", "HEAD"]).trim();
    } catch {
        throw new Error(`release is "auto" but ${appPath} is not inside a git repository with a commit; set medusa-deploy:release explicitly`);
    }
    const status = git(appPath, ["status", "--porcelain", "--untracked-files=all", "--", "."]);
    if (status.trim() === "") return commit;

    const hash = createHash("sha256");
    hash.update(git(appPath, ["diff", "HEAD", "--binary", "--", "."]));
    const root = git(appPath, ["rev-parse", "--show-toplevel"]).trim();
    for (const line of status.split("\n").filter((l) => l.startsWith("?? ")).sort()) {
        const file = path.join(root, line.slice(3));
        hash.update(line);
        if (fs.statSync(file, { throwIfNoEntry: false })?.isFile()) hash.update(fs.readFileSync(file));
    }
    return `${commit}-dirty-${hash.digest("hex").slice(0, 8)}`;
}
