// The Medusa app a building stack builds (setting appPath): what docker/medusa.Dockerfile needs from
// it is a folder with package.json (with a build script: the image runs `npm run build`) and
// package-lock.json (the image installs exactly the locked tree). Checked with the settings, so a
// wrong path is reported as an appPath problem, before the release is read from git and whether or
// not the release is pinned.
import * as fs from "node:fs";
import * as path from "node:path";

const within = (folder: string, parent: string) => folder === parent || folder.startsWith(parent.endsWith(path.sep) ? parent : parent + path.sep);

/** Whether `folder` is in a git work tree (a .git entry in it or a folder above it). */
function inGitWorkTree(folder: string): boolean {
    for (let at = folder; ; at = path.dirname(at)) {
        if (fs.existsSync(path.join(at, ".git"))) return true;
        if (path.dirname(at) === at) return false;
    }
}

/**
 * The folder is the build context BuildKit receives: everything in it can end up in an image and in
 * the registry. It must be a repository's code (this project's folder, or a git work tree such as
 * the shop's own repository) and never the home folder or one above it (`../../..`), where ssh keys
 * and cloud credentials live.
 */
function buildContextProblem(folder: string, projectDir: string, homeDir: string | undefined): { problem: string; fatal: boolean } | undefined {
    const real = fs.realpathSync(folder);
    if (homeDir !== undefined && within(fs.realpathSync(homeDir), real)) {
        const problem = `is ${real === path.parse(real).root ? "the root folder" : real}, which holds your home folder ${homeDir}: the whole of it would be sent to the image build (ssh keys and credentials included). Set it to the Medusa app's own folder`;
        return { problem, fatal: true };
    }
    if (real === path.parse(real).root) return { problem: "is the root folder, which would be sent whole to the image build. Set it to the Medusa app's own folder", fatal: true };
    if (!within(real, fs.realpathSync(projectDir)) && !inGitWorkTree(real)) {
        const problem = `is ${real}, outside this project and not in a git repository: the build sends the folder to BuildKit and names releases by its commit, so it must be the app's repository (or a folder in it). Run \`git init\` there and commit the app, or point appPath at the app in your repository`;
        return { problem, fatal: false };
    }
    return undefined;
}

/** What is wrong with the folder, as "<problem>" phrases that follow the setting's name. */
export function appFolderProblems(appPath: string, projectDir: string, homeDir?: string): string[] {
    const folder = path.resolve(projectDir, appPath);
    const shown = folder === appPath ? `"${appPath}"` : `"${appPath}" (${folder})`;
    const stat = fs.statSync(folder, { throwIfNoEntry: false });
    const what = "the folder of the Medusa app, holding its package.json and package-lock.json (absolute, or relative to this project)";
    if (!stat) return [`${shown} does not exist: set it to ${what}`];
    if (!stat.isDirectory()) return [`${shown} is a file, not a folder: set it to ${what}`];
    const context = buildContextProblem(folder, projectDir, homeDir !== undefined && fs.existsSync(homeDir) ? homeDir : undefined);
    if (context?.fatal) return [`${shown} ${context.problem}`];

    const problems: string[] = [];
    const packageJson = path.join(folder, "package.json");
    if (!fs.existsSync(packageJson)) {
        problems.push(`${shown} has no package.json, so it is not a Node.js app's root: set it to ${what}`);
    } else {
        let scripts: unknown;
        try {
            scripts = (JSON.parse(fs.readFileSync(packageJson, "utf8")) as { scripts?: unknown }).scripts;
        } catch (error) {
            problems.push(`${shown} has a package.json that is not valid JSON (${(error as Error).message}): fix the file`);
            scripts = undefined;
        }
        const build = typeof scripts === "object" && scripts !== null ? (scripts as Record<string, unknown>).build : undefined;
        if (problems.length === 0 && typeof build !== "string") {
            problems.push(`${shown} has a package.json without a "build" script: the image runs \`npm run build\`; a Medusa app has "build": "medusa build"`);
        }
    }
    if (!fs.existsSync(path.join(folder, "package-lock.json"))) {
        problems.push(`${shown} has no package-lock.json: the image installs exactly the locked dependency tree; run \`npm install\` there and commit package-lock.json`);
    }
    if (context) problems.push(`${shown} ${context.problem}`);
    return problems;
}
