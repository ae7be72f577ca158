// The Medusa app a building stack builds (setting appPath): what docker/medusa.Dockerfile needs from
// it is a folder with package.json (with a build script: the image runs `npm run build`) and
// package-lock.json (the image installs exactly the locked tree). Checked with the settings, so a
// wrong path is reported as an appPath problem, before the release is read from git and whether or
// not the release is pinned.
import * as fs from "node:fs";
import * as path from "node:path";

/** What is wrong with the folder, as "<problem>" phrases that follow the setting's name. */
export function appFolderProblems(appPath: string, projectDir: string): string[] {
    const folder = path.resolve(projectDir, appPath);
    const shown = folder === appPath ? `"${appPath}"` : `"${appPath}" (${folder})`;
    const stat = fs.statSync(folder, { throwIfNoEntry: false });
    const what = "the folder of the Medusa app, holding its package.json and package-lock.json (absolute, or relative to this project)";
    if (!stat) return [`${shown} does not exist: set it to ${what}`];
    if (!stat.isDirectory()) return [`${shown} is a file, not a folder: set it to ${what}`];

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
    return problems;
}
