// Validates deploy/ without a cluster: every Kubernetes document against the upstream OpenAPI schemas
// (kubernetes-models, @kubernetes-models/keda), plus the cross-object facts that schemas cannot see.
import { describe, it, expect } from 'vitest';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ConfigMap, Namespace, Secret, Service } from 'kubernetes-models/v1';
import { StatefulSet } from 'kubernetes-models/apps/v1';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { ScaledObject, TriggerAuthentication } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { renderAll, loadConfig, BACKEND_SECRET, EDGE_METRICS_SECRET, GROUP_CONFIG_PATH, STAGE_SECRET } from '../../deploy/k8s/render.ts';
import { GroupConfigSchema } from '../../gpu-backend/serve/groupConfig.ts';
import { main as uvitMain } from '../../gpu-backend/cli/main.ts';

const root = join(import.meta.dirname, '../..');
const k8s = join(root, 'deploy/k8s');

type Doc = { file: string; obj: any };
function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? yamlFiles(join(dir, e.name)) : e.name.endsWith('.yaml') ? [join(dir, e.name)] : []);
}
function load(file: string): Doc[] {
  return parseAllDocuments(readFileSync(file, 'utf8')).map((d) => {
    if (d.errors.length) throw new Error(`${relative(root, file)}: ${d.errors[0].message}`);
    return { file: relative(root, file), obj: d.toJS() };
  });
}
const docs = yamlFiles(k8s).flatMap(load);
const applied = (() => {
  const kust = load(join(k8s, 'kustomization.yaml'))[0].obj;
  return (kust.resources as string[]).flatMap((r) => load(join(k8s, r)));
})();
const ofKind = (kind: string, from = applied) => from.filter((d) => d.obj.kind === kind).map((d) => d.obj);

const MODELS: Record<string, new (o: any) => { validate(): void }> = {
  'v1/Namespace': Namespace,
  'v1/Secret': Secret,
  'v1/ConfigMap': ConfigMap,
  'v1/Service': Service,
  'apps/v1/StatefulSet': StatefulSet,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'keda.sh/v1alpha1/ScaledObject': ScaledObject,
  'keda.sh/v1alpha1/TriggerAuthentication': TriggerAuthentication,
};

const podSpecs = () => ofKind('StatefulSet').map((s) => ({ sts: s, pod: s.spec.template.spec }));
const allContainers = () => podSpecs().flatMap(({ sts, pod }) =>
  [...(pod.initContainers ?? []), ...pod.containers].map((c: any) => ({ sts, pod, c })));

/** `uvit <subcommand>` invocations in a container command, whether argv or an `sh -c` script. */
function uvitInvocations(command: string[]): string[][] {
  const text = command[0] === 'sh' && command[1] === '-c' ? command[2] : command.join(' ');
  return [...text.matchAll(/(?:^|\s|exec\s)uvit\s+([^\n]+)/g)].map((m) => m[1].trim().split(/\s+/));
}

describe('deploy/k8s manifests', () => {
  it('generated files are up to date with models.json (npm run deploy:render)', () => {
    for (const [rel, text] of renderAll(loadConfig())) {
      expect(readFileSync(join(k8s, rel), 'utf8'), `deploy/k8s/${rel} is stale`).toBe(text);
    }
  });

  it('every document validates against its Kubernetes / KEDA schema', () => {
    expect(docs.length).toBeGreaterThan(10);
    for (const { file, obj } of docs) {
      if (obj.kind === 'Kustomization') continue;
      const Model = MODELS[`${obj.apiVersion}/${obj.kind}`];
      expect(Model, `${file}: no schema for ${obj.apiVersion} ${obj.kind}`).toBeDefined();
      expect(() => new Model(obj).validate(), `${file}: ${obj.kind}/${obj.metadata?.name}`).not.toThrow();
    }
  });

  it('the schema validation is not vacuous: a broken StatefulSet is rejected', () => {
    const sts = structuredClone(ofKind('StatefulSet')[0]);
    sts.spec.template.spec.containers[0].resources.limits['nvidia.com/gpu'] = { one: 1 };
    expect(() => new StatefulSet(sts).validate()).toThrow();
    delete sts.spec.selector;
    expect(() => new StatefulSet(sts).validate()).toThrow(/selector/);
  });

  it('names are DNS-1123 labels short enough for StatefulSet pods, all in one namespace', () => {
    const ns = ofKind('Namespace')[0].metadata.name;
    for (const { obj } of applied) {
      if (obj.kind === 'Namespace') continue;
      expect(obj.metadata.namespace, `${obj.kind}/${obj.metadata.name}`).toBe(ns);
      expect(obj.metadata.name).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
      if (obj.kind === 'StatefulSet') expect(obj.metadata.name.length).toBeLessThanOrEqual(52);
    }
  });

  it('selectors match pod labels, and each StatefulSet has a headless Service exposing its ports', () => {
    const services = ofKind('Service');
    for (const { sts, pod } of podSpecs()) {
      const podLabels = sts.spec.template.metadata.labels;
      for (const [k, v] of Object.entries(sts.spec.selector.matchLabels)) expect(podLabels[k], `${sts.metadata.name} ${k}`).toBe(v);
      const svc = services.find((s) => s.metadata.name === sts.spec.serviceName);
      expect(svc, `${sts.metadata.name}: serviceName ${sts.spec.serviceName}`).toBeDefined();
      expect(svc.spec.clusterIP).toBe('None');
      for (const [k, v] of Object.entries(svc.spec.selector)) expect(podLabels[k], `${svc.metadata.name} selects ${k}`).toBe(v);
      const portNames = pod.containers.flatMap((c: any) => (c.ports ?? []).map((p: any) => p.name));
      for (const p of svc.spec.ports) expect(portNames).toContain(p.targetPort);
    }
  });

  it('each stage pod and each driver pod gets one GPU, memory limits, and probes on a declared port', () => {
    const cfg = loadConfig();
    for (const { sts, pod } of podSpecs()) {
      const role = sts.metadata.labels['uvit.dev/role'];
      expect(['stage', 'driver']).toContain(role);
      const model = cfg.models.find((m) => m.model === sts.metadata.labels['uvit.dev/model'])!;
      expect(model).toBeDefined();
      expect(pod.containers).toHaveLength(1);
      const c = pod.containers[0];
      const gpus = role === 'stage' ? model.stage.gpus : model.driver.gpus;
      if (role === 'stage') expect(gpus).toBe(1);
      expect(c.resources.limits['nvidia.com/gpu']).toBe(String(gpus));
      expect(c.resources.requests['nvidia.com/gpu']).toBe(String(gpus));
      expect(c.resources.limits.memory).toMatch(/^\d+(Gi|Mi)$/);
      const ports = (c.ports ?? []).map((p: any) => p.name);
      for (const probe of ['readinessProbe', 'livenessProbe', 'startupProbe']) {
        const p = c[probe];
        expect(p, `${sts.metadata.name} ${probe}`).toBeDefined();
        expect(ports).toContain((p.tcpSocket ?? p.httpGet).port);
      }
      for (const ic of [...(pod.initContainers ?? []), c]) expect(ic.image).toMatch(/^[\w.\-/:]+:[\w.\-]+$/);
    }
  });

  it('secrets come only from secretKeyRefs to the documented Secrets, never from literal values', () => {
    const example = load(join(k8s, 'base/secrets.example.yaml')).map((d) => d.obj);
    expect(example.map((s) => s.metadata.name).sort()).toEqual([BACKEND_SECRET.name, EDGE_METRICS_SECRET.name, STAGE_SECRET.name].sort());
    expect(applied.some((d) => d.obj.kind === 'Secret'), 'real secrets must not be applied from the repo').toBe(false);
    let refs = 0;
    for (const { sts, c } of allContainers()) {
      for (const e of c.env ?? []) {
        if (/SECRET|TOKEN|PASSWORD|KEY/.test(e.name)) expect(e.value, `${sts.metadata.name} ${e.name} literal`).toBeUndefined();
        const ref = e.valueFrom?.secretKeyRef;
        if (!ref) continue;
        refs++;
        const s = example.find((x) => x.metadata.name === ref.name);
        expect(s, `${ref.name}`).toBeDefined();
        expect(Object.keys(s.stringData)).toContain(ref.key);
      }
    }
    expect(refs).toBeGreaterThan(0);
    const auth = ofKind('TriggerAuthentication')[0];
    for (const r of auth.spec.secretTargetRef) expect(example.find((x) => x.metadata.name === r.name)?.stringData[r.key]).toBeDefined();
  });

  it("every stage and driver container gets its own model's stage group secret, and no other container gets one", () => {
    let n = 0;
    for (const { sts, pod, c } of allContainers()) {
      const env = (c.env ?? []).find((e: any) => e.name === 'UVIT_GROUP_SECRET');
      const isInit = (pod.initContainers ?? []).includes(c);
      if (isInit) {
        expect(env, `${sts.metadata.name} init container`).toBeUndefined();
        continue;
      }
      expect(env?.valueFrom?.secretKeyRef, `${sts.metadata.name}`).toEqual({ name: STAGE_SECRET.name, key: sts.metadata.labels['uvit.dev/model'] });
      n++;
    }
    expect(n).toBe(loadConfig().models.reduce((a, m) => a + m.stages + 1, 0));
  });

  it('every StatefulSet of a model scales on the same queue-depth trigger, independently per model', () => {
    const sos = ofKind('ScaledObject');
    const sets = ofKind('StatefulSet');
    expect(sos.map((s) => s.spec.scaleTargetRef.name).sort()).toEqual(sets.map((s) => s.metadata.name).sort());
    const auth = ofKind('TriggerAuthentication').map((a) => a.metadata.name);
    const byModel = new Map<string, any[]>();
    for (const so of sos) {
      expect(so.spec.scaleTargetRef.kind).toBe('StatefulSet');
      const t = so.spec.triggers[0];
      expect(auth).toContain(t.authenticationRef.name);
      const model = so.metadata.labels['uvit.dev/model'];
      expect(new URL(t.metadata.url).searchParams.get('model')).toBe(model);
      byModel.set(model, [...(byModel.get(model) ?? []), so]);
    }
    expect(byModel.size).toBe(loadConfig().models.length);
    for (const [, group] of byModel) {
      const key = (so: any) => JSON.stringify([so.spec.minReplicaCount, so.spec.maxReplicaCount, so.spec.triggers, so.spec.advanced]);
      expect(new Set(group.map(key)).size).toBe(1);
    }
  });

  it('driver i addresses stage pod i of every stage StatefulSet by its stable DNS name and port', () => {
    const sets = ofKind('StatefulSet');
    for (const driver of sets.filter((s) => s.metadata.labels['uvit.dev/role'] === 'driver')) {
      const model = driver.metadata.labels['uvit.dev/model'];
      const stages = sets.filter((s) => s.metadata.labels['uvit.dev/role'] === 'stage' && s.metadata.labels['uvit.dev/model'] === model)
        .sort((a, b) => Number(a.metadata.labels['uvit.dev/stage-index']) - Number(b.metadata.labels['uvit.dev/stage-index']));
      const serve = uvitInvocations(driver.spec.template.spec.containers[0].command).find((a) => a[0] === 'serve')!;
      const hosts = serve[serve.indexOf('--stages') + 1].replace(/"/g, '').split(',');
      expect(hosts).toHaveLength(stages.length);
      stages.forEach((s, k) => {
        const c = s.spec.template.spec.containers[0];
        expect(hosts[k]).toBe(`${s.metadata.name}-$ORD.${s.spec.serviceName}:${c.ports[0].containerPort}`);
        const stage = uvitInvocations(c.command).find((a) => a[0] === 'stage')!;
        expect(stage[stage.indexOf('--index') + 1]).toBe(String(k));
        expect(stage[stage.indexOf('--listen') + 1]).toBe(`0.0.0.0:${c.ports[0].containerPort}`);
        expect(stage[stage.indexOf('--peers') + 1].replace(/"/g, '').split(',')).toEqual(hosts);
        expect(c.env.find((e: any) => e.name === 'POD_NAME')?.valueFrom.fieldRef.fieldPath).toBe('metadata.name');
      });
      expect(driver.spec.replicas).toBe(stages[0].spec.replicas);
    }
  });

  it('demo groups make their weights from a group config that is in the repo (and in the image)', () => {
    for (const m of loadConfig().models.filter((x) => x.weights === 'init')) {
      expect(existsSync(join(root, m.groupConfig)), m.groupConfig).toBe(true);
      expect(m.groupConfig.startsWith('gpu-backend/')).toBe(true);
    }
  });

  it("demo pods run the repo's group config, rewritten for the pod and valid for the driver's schema", () => {
    for (const cm of ofKind('ConfigMap')) {
      const model = cm.metadata.labels['uvit.dev/model'];
      const g = GroupConfigSchema.parse(JSON.parse(cm.data['group.json']));
      expect(g.model_id).toBe(model);
      expect(g.stages).toHaveLength(loadConfig().models.find((m) => m.model === model)!.stages);
      expect(g.stages!.every((s) => s.ep === 'cuda')).toBe(true);
      expect(existsSync(join(root, g.model.replace(/^\/app\//, '')))).toBe(true);
      for (const f of [g.weights, g.text_encoder.onnx, g.decoder.onnx]) expect(f.startsWith('/data/model/')).toBe(true);
      const driver = ofKind('StatefulSet').find((s) => s.metadata.name === `${model}-driver`);
      const serve = uvitInvocations(driver.spec.template.spec.containers[0].command).find((a) => a[0] === 'serve')!;
      expect(serve[serve.indexOf('--config') + 1]).toBe(GROUP_CONFIG_PATH);
      const vol = driver.spec.template.spec.volumes.find((v: any) => v.configMap?.name === cm.metadata.name);
      const mount = driver.spec.template.spec.containers[0].volumeMounts.find((v: any) => v.name === vol.name);
      expect(join(mount.mountPath, 'group.json')).toBe(GROUP_CONFIG_PATH);
    }
    expect(ofKind('ConfigMap').length).toBe(loadConfig().models.filter((m) => m.weights === 'init').length);
  });

  it('containers run real `uvit` subcommands with flags those subcommands accept', async () => {
    const calls = allContainers().flatMap(({ c }) => uvitInvocations(c.command));
    const subs = new Set(calls.map((a) => a[0]));
    expect([...subs].sort()).toEqual(['export', 'init-weights', 'serve', 'stage']);
    for (const sub of subs) {
      let help = '';
      const rc = await uvitMain([sub, '--help'], { stdout: (t) => { help += t; }, stderr: (t) => { help += t; } });
      expect(rc, `uvit ${sub} --help: ${help}`).toBe(0);
      for (const a of calls.filter((x) => x[0] === sub)) {
        for (const flag of a.filter((t) => t.startsWith('--'))) expect(help, `uvit ${sub} has no ${flag}`).toMatch(new RegExp(`${flag}\\b`));
      }
    }
  });

  it("stage ports are open only to the same model's drivers and stages", () => {
    const sel = (l: Record<string, string>, m: Record<string, string>) => Object.entries(m).every(([k, v]) => l[k] === v);
    const sets = ofKind('StatefulSet');
    for (const np of ofKind('NetworkPolicy')) {
      const model = np.metadata.labels['uvit.dev/model'];
      const targets = sets.filter((s) => sel(s.spec.template.metadata.labels, np.spec.podSelector.matchLabels));
      expect(targets.map((s) => s.metadata.labels['uvit.dev/role'])).toEqual(targets.map(() => 'stage'));
      expect(targets.length).toBe(loadConfig().models.find((m) => m.model === model)!.stages);
      const allowed = sets.filter((s) => np.spec.ingress[0].from.some((f: any) => sel(s.spec.template.metadata.labels, f.podSelector.matchLabels)));
      expect(allowed.every((s) => s.metadata.labels['uvit.dev/model'] === model)).toBe(true);
      expect(allowed.some((s) => s.metadata.labels['uvit.dev/role'] === 'driver')).toBe(true);
      expect(np.spec.ingress[0].ports[0].port).toBe(targets[0].spec.template.spec.containers[0].ports[0].containerPort);
    }
    expect(ofKind('NetworkPolicy').length).toBe(loadConfig().models.length);
  });

  it('kustomization lists existing files and leaves the example secrets out', () => {
    const kust = load(join(k8s, 'kustomization.yaml'))[0].obj;
    for (const r of kust.resources) expect(existsSync(join(k8s, r)), r).toBe(true);
    expect(kust.resources).not.toContain('base/secrets.example.yaml');
  });
});

describe('deploy/docker backend image', () => {
  const dockerfile = readFileSync(join(root, 'deploy/docker/backend.Dockerfile'), 'utf8');
  const ignore = readFileSync(join(root, 'deploy/docker/backend.Dockerfile.dockerignore'), 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));

  it('is Node 22 and copies only paths that exist and that the .dockerignore lets through', () => {
    expect(dockerfile).toMatch(/^ARG NODE_IMAGE=node:22[\w.-]*$/m);
    const copies = [...dockerfile.matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => m[1].split(/\s+/));
    expect(copies).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', 'bin', 'shared', 'gpu-backend']));
    for (const p of copies) {
      expect(existsSync(join(root, p)), p).toBe(true);
      expect(ignore.some((l) => l === `!${p}` || l === `!${p}/**`), `${p} excluded by .dockerignore`).toBe(true);
    }
  });

  it('puts the package bin `uvit` on PATH and installs onnxruntime-node with a selectable CUDA EP', () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    expect(dockerfile).toContain(`ln -s /app/${pkg.bin.uvit.replace(/^\.\//, '')} /usr/local/bin/uvit`);
    expect(existsSync(join(root, pkg.bin.uvit))).toBe(true);
    expect(pkg.dependencies['onnxruntime-node']).toBeDefined();
    // the environment variable outranks the repo's .npmrc (onnxruntime-node-install=skip)
    expect(dockerfile).toMatch(/ONNXRUNTIME_NODE_INSTALL=\$\{ORT_INSTALL\} npm rebuild onnxruntime-node/);
  });

  it('installs production dependencies only, and every package the backend imports is one', () => {
    expect(dockerfile).toMatch(/^RUN npm ci --omit=dev /m);
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
    const files = ['gpu-backend', 'shared'].flatMap((d) =>
      readdirSync(join(root, d), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts')).map((f) => join(root, d, f)));
    const imported = new Set<string>();
    for (const f of files) {
      for (const m of readFileSync(f, 'utf8').matchAll(/(?:from |import\()'([^'.][^']*)'/g)) {
        if (m[1].startsWith('node:')) continue;
        imported.add(m[1].split('/').slice(0, m[1].startsWith('@') ? 2 : 1).join('/'));
      }
    }
    expect([...imported].sort()).toContain('onnxruntime-node');
    for (const name of imported) expect(pkg.dependencies[name], `${name} is imported by the backend image's code`).toBeDefined();
  });
});
