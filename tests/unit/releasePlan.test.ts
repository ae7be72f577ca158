import { strict as assert } from "node:assert";
import { PreviousState, planRelease, ReleasePlan, describePlan } from "../../lib/releasePlan";

const img = (n: string) => `registry.example.com/shop/medusa@sha256:${n.repeat(64).slice(0, 64)}`;

/** Turns a plan into the next deploy's previous state, as the stack outputs would record it. */
function recorded(plan: ReleasePlan, newImage: string): PreviousState {
    const colours: PreviousState["colours"] = {};
    for (const colour of ["blue", "green"] as const) {
        const planned = plan.colours[colour];
        if (!planned) continue;
        colours[colour] = { release: planned.release, image: planned.image.kind === "new" ? newImage : planned.image.ref };
    }
    return { live: plan.live, colours };
}

describe("release planner (DESIGN.md section 2)", () => {
    const cases: Array<{ name: string; previous: PreviousState | undefined; desired: string; expect: Partial<ReleasePlan> }> = [
        {
            name: "first deploy: blue runs it and is live",
            previous: undefined,
            desired: "A",
            expect: { kind: "first-deploy", live: "blue", replaced: "blue", previousLive: undefined, rollbackRelease: undefined },
        },
        {
            name: "live colour runs the release: unchanged, nothing replaced",
            previous: { live: "blue", colours: { blue: { release: "A", image: img("a") } } },
            desired: "A",
            expect: { kind: "unchanged", live: "blue", replaced: undefined, previousLive: "blue", rollbackRelease: undefined },
        },
        {
            name: "idle colour still runs the release: switch back, nothing replaced",
            previous: { live: "green", colours: { blue: { release: "A", image: img("a") }, green: { release: "B", image: img("b") } } },
            desired: "A",
            expect: { kind: "switch-back", live: "blue", replaced: undefined, previousLive: "green", rollbackRelease: "B" },
        },
        {
            name: "neither runs it: idle colour replaced, then live",
            previous: { live: "blue", colours: { blue: { release: "A", image: img("a") }, green: { release: "B", image: img("b") } } },
            desired: "C",
            expect: { kind: "deploy-idle", live: "green", replaced: "green", previousLive: "blue", rollbackRelease: "A" },
        },
        {
            name: "second deploy ever: green (never deployed) gets it",
            previous: { live: "blue", colours: { blue: { release: "A", image: img("a") } } },
            desired: "B",
            expect: { kind: "deploy-idle", live: "green", replaced: "green", previousLive: "blue", rollbackRelease: "A" },
        },
        {
            name: "both colours run the release: live one wins, nothing changes",
            previous: { live: "green", colours: { blue: { release: "A", image: img("a") }, green: { release: "A", image: img("b") } } },
            desired: "A",
            expect: { kind: "unchanged", live: "green", replaced: undefined, rollbackRelease: "A" },
        },
    ];

    for (const c of cases) {
        it(c.name, () => {
            const plan = planRelease(c.previous, c.desired);
            for (const [key, value] of Object.entries(c.expect)) {
                assert.deepEqual(plan[key as keyof ReleasePlan], value, `${key} of ${describePlan(plan)}`);
            }
            assert.equal(plan.colours[plan.live]?.release, c.desired, "the live colour runs the desired release");
            if (c.previous) assert.notEqual(plan.replaced, c.previous.live, "the previously live colour is never replaced");
        });
    }

    it("keeps the previous image of every colour it does not replace, pinned by digest", () => {
        const previous: PreviousState = { live: "blue", colours: { blue: { release: "A", image: img("a") }, green: { release: "B", image: img("b") } } };
        const plan = planRelease(previous, "C");
        assert.deepEqual(plan.colours.blue, { release: "A", image: { kind: "previous", ref: img("a") } });
        assert.deepEqual(plan.colours.green, { release: "C", image: { kind: "new" } });
        const back = planRelease(previous, "B");
        assert.deepEqual(back.colours.green, { release: "B", image: { kind: "previous", ref: img("b") } });
    });

    it("repeated deploys alternate colours and always keep the previous release as rollback", () => {
        let previous: PreviousState | undefined;
        const lives: string[] = [];
        for (const [i, release] of ["A", "B", "C", "D"].entries()) {
            const plan = planRelease(previous, release);
            lives.push(plan.live);
            if (i > 0) assert.equal(plan.rollbackRelease, ["A", "B", "C", "D"][i - 1]);
            previous = recorded(plan, img(String(i)));
        }
        assert.deepEqual(lives, ["blue", "green", "blue", "green"]);
        // Deploying the same release again right after is a no-op.
        assert.equal(planRelease(previous, "D").kind, "unchanged");
    });

    it("rollback twice in a row moves traffic back and forth without replacing anything", () => {
        let previous: PreviousState = recorded(planRelease(recorded(planRelease(undefined, "A"), img("a")), "B"), img("b"));
        assert.equal(previous.live, "green");
        const first = planRelease(previous, "A");
        assert.deepEqual([first.kind, first.live, first.replaced, first.rollbackRelease], ["switch-back", "blue", undefined, "B"]);
        previous = recorded(first, img("x"));
        const second = planRelease(previous, "B");
        assert.deepEqual([second.kind, second.live, second.replaced, second.rollbackRelease], ["switch-back", "green", undefined, "A"]);
        assert.equal(recorded(second, img("y")).colours.green?.image, img("b"), "green still runs B's original image");
    });

    it("rejects an empty release", () => {
        assert.throws(() => planRelease(undefined, " "), /desired release is empty/);
    });

    it("describes each kind of plan in one line", () => {
        const previous: PreviousState = { live: "blue", colours: { blue: { release: "A", image: img("a") } } };
        assert.match(describePlan(planRelease(undefined, "A")), /^first deploy: blue runs A/);
        assert.match(describePlan(planRelease(previous, "A")), /^unchanged: blue already serves A/);
        assert.match(describePlan(planRelease(previous, "B")), /^deploy: green is replaced with B, then traffic moves blue -> green/);
    });
});

describe("release planner: manual promotion (promotion: manual, npm run switch)", () => {
    const manual = { promotion: "manual" as const, switchNow: false };
    const switching = { promotion: "manual" as const, switchNow: true };
    const live = { live: "blue" as const, colours: { blue: { release: "A", image: img("a") }, green: { release: "Z", image: img("f") } } };

    it("a new release is staged on the idle colour and traffic stays; the staged colour is named", () => {
        const plan = planRelease(live, "B", manual);
        assert.equal(plan.kind, "stage-idle");
        assert.equal(plan.live, "blue");
        assert.equal(plan.previousLive, "blue");
        assert.equal(plan.replaced, "green");
        assert.equal(plan.awaitingSwitch, "green");
        assert.deepEqual(plan.colours.green, { release: "B", image: { kind: "new" } });
        assert.equal(plan.rollbackRelease, undefined, "the idle colour no longer holds the previous release");
        assert.match(describePlan(plan), /^stage: green is replaced with B and gated; traffic stays on blue until npm run switch/);
    });

    it("the same release again, still waiting, changes nothing; the switch then moves traffic without building", () => {
        const staged = recorded(planRelease(live, "B", manual), img("b"));
        const again = planRelease(staged, "B", manual);
        assert.equal(again.kind, "unchanged");
        assert.equal(again.live, "blue");
        assert.equal(again.awaitingSwitch, "green");
        assert.equal(again.replaced, undefined);
        const moved = planRelease(staged, "B", switching);
        assert.equal(moved.kind, "switch-back");
        assert.equal(moved.live, "green");
        assert.equal(moved.replaced, undefined, "nothing is rebuilt or replaced");
        assert.equal(moved.rollbackRelease, "A");
    });

    it("the switch refuses to do anything but move traffic to what was staged", () => {
        assert.throws(() => planRelease(live, "C", switching), /MEDUSA_DEPLOY_SWITCH=1 .* neither colour runs release C: run `pulumi up` to stage it first; nothing was changed/);
        assert.throws(() => planRelease(live, "A", switching), /blue already serves A/);
        assert.throws(() => planRelease(undefined, "A", switching), /nothing was deployed yet/);
    });

    it("the first deploy goes live even with manual promotion: there is nothing to keep serving", () => {
        const plan = planRelease(undefined, "A", manual);
        assert.equal(plan.kind, "first-deploy");
        assert.equal(plan.live, "blue");
    });
});
