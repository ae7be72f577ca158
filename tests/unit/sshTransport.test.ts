import { strict as assert } from "node:assert";
import { dockerSshOptions, knownHostsLine, parseHostKey, sshFiles } from "../../lib/sshTransport";
import { fakeHostKey } from "./fixtureSecrets";

describe("ssh transport of an ssh host", () => {
    const key = fakeHostKey();
    const [type, blob] = key.split(" ");

    it("takes a host key as a .pub line, a known_hosts line or ssh-keyscan prints it, and nothing else", () => {
        assert.deepEqual(parseHostKey(`${key} root@shop`), { type, key: blob });
        assert.deepEqual(parseHostKey(`shop.example.com ${key}`), { type, key: blob });
        assert.deepEqual(parseHostKey(`  ${key}\n`), { type, key: blob });
        assert.equal(parseHostKey("ssh-ed25519"), undefined);
        assert.equal(parseHostKey(`ssh-rsa ${blob}`), undefined, "a blob of another key type");
        assert.equal(parseHostKey(`a b ${key}`), undefined, "more than one word before the type");
        assert.equal(parseHostKey("ssh-ed25519 not*base64"), undefined);
    });

    it("pins the key for the host and port as OpenSSH looks it up", () => {
        assert.equal(knownHostsLine({ user: "deploy", hostname: "shop.example.com", port: 22, hostKey: key }), `shop.example.com ${key}\n`);
        assert.equal(knownHostsLine({ user: "deploy", hostname: "10.0.0.5", port: 2222, hostKey: key }), `[10.0.0.5]:2222 ${key}\n`);
    });

    it("gives Docker's ssh client the stack's key and known hosts only, strictly, without a prompt or an agent", () => {
        const files = sshFiles("/home/shop", "prod");
        assert.deepEqual(files, { dir: "/home/shop/.medusa-deploy/ssh/prod", identity: "/home/shop/.medusa-deploy/ssh/prod/id", knownHosts: "/home/shop/.medusa-deploy/ssh/prod/known_hosts" });
        const options = dockerSshOptions(files).join(" ");
        for (const option of ["BatchMode=yes", "IdentitiesOnly=yes", "IdentityAgent=none", `-i ${files.identity}`, `UserKnownHostsFile=${files.knownHosts}`, "GlobalKnownHostsFile=/dev/null", "StrictHostKeyChecking=yes"]) {
            assert.ok(options.includes(option), `missing ${option} in ${options}`);
        }
    });
});
