// Rewrites Pulumi.yaml's `config:` block and the README's configuration reference from
// lib/configSchema.ts. tests/unit/configDocs.test.ts fails when they are out of date.
import * as fs from "node:fs";
import * as path from "node:path";
import * as yaml from "js-yaml";
import { README_BEGIN, README_END, pulumiYamlConfig, pulumiYamlHeaderComment, readmeConfigReference } from "../lib/configDocs";

const root = path.resolve(__dirname, "..");

function updatePulumiYaml(): void {
    const file = path.join(root, "Pulumi.yaml");
    const text = fs.readFileSync(file, "utf8");
    const marker = "# The config block below is generated";
    const head = text.includes(marker) ? text.slice(0, text.indexOf(marker)) : text.endsWith("\n") ? text : text + "\n";
    const block = yaml.dump({ config: pulumiYamlConfig() }, { lineWidth: 120, noRefs: true });
    fs.writeFileSync(file, head + pulumiYamlHeaderComment() + block);
}

function updateReadme(): void {
    const file = path.join(root, "README.md");
    const text = fs.readFileSync(file, "utf8");
    const start = text.indexOf(README_BEGIN);
    const end = text.indexOf(README_END);
    if (start < 0 || end < 0) throw new Error(`README.md lacks the markers ${README_BEGIN} … ${README_END}`);
    fs.writeFileSync(file, text.slice(0, start) + readmeConfigReference() + text.slice(end + README_END.length));
}

updatePulumiYaml();
updateReadme();
console.log("Pulumi.yaml and README.md configuration reference updated");
