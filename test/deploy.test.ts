// deploy/: what can be checked without a container engine or a cluster.
// Every YAML parses; Kubernetes objects carry the fields the API server
// requires and agree with each other; the walrelay configs in them pass
// `walrelay validate`; docker-compose (1.29, no engine needed) accepts the
// compose file; promtool accepts and unit-tests the alert rules.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { writeConfig, runCli } from './harness/relay.js';
import { loadEdgeConfig } from '../config/load.js';

const DEPLOY = resolve('deploy');

function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

function yamlDocuments(file: string): any[] {
  const documents = parseAllDocuments(readFileSync(file, 'utf8'));
  for (const document of documents) assert.deepEqual(document.errors.map((error) => error.message), [], relative(DEPLOY, file));
  return documents.map((document) => document.toJS());
}

function kubernetesObjects(): Map<string, any> {
  const objects = new Map<string, any>();
  for (const file of filesUnder(join(DEPLOY, 'kubernetes')).filter((path) => path.endsWith('.yaml') && !path.endsWith('kustomization.yaml'))) {
    for (const object of yamlDocuments(file)) objects.set(`${object.kind}/${object.metadata?.name}`, { ...object, file });
  }
  return objects;
}

const labelsMatch = (selector: Record<string, string>, labels: Record<string, string>) => Object.entries(selector).every(([key, value]) => labels?.[key] === value);

describe('deploy files', () => {
  it('every YAML file parses', () => {
    const files = filesUnder(DEPLOY).filter((path) => /\.ya?ml$/.test(path));
    assert.ok(files.length >= 10, files.join(', '));
    for (const file of files) assert.ok(yamlDocuments(file).length >= 1, file);
  });

  it('Kubernetes objects have the required fields and agree with each other', () => {
    const objects = kubernetesObjects();
    for (const [id, object] of objects) {
      assert.ok(typeof object.apiVersion === 'string' && typeof object.kind === 'string', id);
      assert.match(object.metadata.name, /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, `${id}: metadata.name`);
    }
    const deployment = objects.get('Deployment/walrelay');
    assert.ok(deployment, 'a Deployment named walrelay');
    assert.equal(deployment.apiVersion, 'apps/v1');
    assert.equal(deployment.spec.replicas, 2, 'the two-replica hot-standby pattern');
    assert.ok(labelsMatch(deployment.spec.selector.matchLabels, deployment.spec.template.metadata.labels), 'selector matches the pod labels');
    const [container] = deployment.spec.template.spec.containers;
    assert.ok(container.name && container.image, 'container name and image');
    assert.equal(container.livenessProbe.httpGet.path, '/healthz');
    assert.equal(container.readinessProbe.httpGet.path, '/readyz?standby=ok', 'a standby must count as ready, or a rollout never ends');
    const port = container.ports.find((entry: any) => entry.name === container.readinessProbe.httpGet.port);
    assert.ok(port, 'probes name a declared container port');
    assert.ok(deployment.spec.template.spec.terminationGracePeriodSeconds > 30, 'longer than the drain timeout');

    const configMapName = deployment.spec.template.spec.volumes.find((volume: any) => volume.configMap).configMap.name;
    const secretVolume = deployment.spec.template.spec.volumes.find((volume: any) => volume.secret);
    const secretName = secretVolume.secret.secretName;
    assert.ok(container.volumeMounts.some((mount: any) => mount.name === secretVolume.name), 'the Secret is mounted as files');
    assert.ok(objects.has(`ConfigMap/${configMapName}`), `ConfigMap ${configMapName} exists`);
    assert.equal(objects.get(`Secret/${secretName}`)?.apiVersion, 'v1', `Secret ${secretName} exists`);

    const budget = objects.get('PodDisruptionBudget/walrelay');
    assert.equal(budget.apiVersion, 'policy/v1');
    assert.ok(labelsMatch(budget.spec.selector.matchLabels, deployment.spec.template.metadata.labels), 'the budget selects the pods');
    assert.ok((budget.spec.minAvailable ?? 0) >= 1 || budget.spec.maxUnavailable === 1);

    const kustomization = yamlDocuments(join(DEPLOY, 'kubernetes', 'kustomization.yaml'))[0];
    const listed = new Set(kustomization.resources);
    for (const object of objects.values()) assert.ok(listed.has(relative(join(DEPLOY, 'kubernetes'), object.file)), `${object.file} in kustomization.yaml`);
  });

  it('the ConfigMap\'s walrelay.yaml is valid with the Secret\'s files where the pod mounts them and the port the probes use', async () => {
    const objects = kubernetesObjects();
    const configText: string = objects.get('ConfigMap/walrelay-config').data['walrelay.yaml'];
    const [container0] = objects.get('Deployment/walrelay').spec.template.spec.containers;
    const mountPath: string = container0.volumeMounts.find((mount: any) => mount.name === 'credentials').mountPath;
    // The Secret's keys as the kubelet writes them: one file per key under the mount path.
    const mounted = mkdtempSync(join(tmpdir(), 'walrelay-secret-'));
    for (const [key, value] of Object.entries(objects.get('Secret/walrelay-credentials').stringData as Record<string, string>)) writeFileSync(join(mounted, key), value);
    assert.ok(configText.includes(`${mountPath}/`), 'the configuration reads the mounted Secret');
    const config = parseAllDocuments(configText.replaceAll(`${mountPath}/`, `${mounted}/`))[0].toJS();
    const result = await runCli(['validate', '-c', writeConfig(config)]);
    assert.equal(result.code, 0, result.stderr);
    const [container] = objects.get('Deployment/walrelay').spec.template.spec.containers;
    assert.equal(config.http.port, container.ports[0].containerPort);
    assert.equal(config.http.host, '0.0.0.0', 'probes reach the pod IP, not its loopback');
  });

  it('docker-compose accepts the compose file, and its walrelay.yaml is valid', async () => {
    const compose = spawnSync('docker-compose', ['-f', join(DEPLOY, 'docker-compose.yml'), 'config', '--quiet'], { encoding: 'utf8' });
    assert.equal(compose.error, undefined, 'docker-compose is installed (.ci/run installs it)');
    assert.equal(compose.status, 0, compose.stderr);
    const [file] = yamlDocuments(join(DEPLOY, 'docker-compose.yml'));
    assert.deepEqual(Object.keys(file.services).sort(), ['edge', 'kafka', 'postgres', 'prometheus', 'redis', 'walrelay', 'walrelay-setup']);
    assert.ok(file.services.postgres.command.includes('wal_level=logical'));
    assert.equal(file.services.kafka.environment.KAFKA_PROCESS_ROLES, 'broker,controller', 'Kafka in KRaft mode');
    const result = await runCli(['validate', '-c', join(DEPLOY, 'compose', 'walrelay.yaml')]);
    assert.equal(result.code, 0, result.stderr);
  });

  it('the edges (docs/edges.md): Deployment, Service and autoscaler agree, and both edge configs load with the Secret\'s files', () => {
    const objects = kubernetesObjects();
    const deployment = objects.get('Deployment/walrelay-edge');
    assert.equal(deployment.apiVersion, 'apps/v1');
    const labels = deployment.spec.template.metadata.labels;
    assert.ok(labelsMatch(deployment.spec.selector.matchLabels, labels));
    assert.ok(!labelsMatch(objects.get('PodDisruptionBudget/walrelay').spec.selector.matchLabels, labels), 'the relay\'s budget does not select edges');
    const service = objects.get('Service/walrelay-edge');
    assert.ok(labelsMatch(service.spec.selector, labels), 'the Service selects the edge pods');
    const [container] = deployment.spec.template.spec.containers;
    assert.deepEqual(container.args, ['edge']);
    assert.ok(container.ports.some((entry: any) => entry.name === service.spec.ports[0].targetPort), 'the Service targets a declared port');
    const hpa = objects.get('HorizontalPodAutoscaler/walrelay-edge');
    assert.equal(hpa.apiVersion, 'autoscaling/v2');
    assert.deepEqual([hpa.spec.scaleTargetRef.kind, hpa.spec.scaleTargetRef.name], ['Deployment', 'walrelay-edge']);
    const configMap = objects.get(`ConfigMap/${deployment.spec.template.spec.volumes.find((volume: any) => volume.configMap).configMap.name}`);
    const mountPath: string = container.volumeMounts.find((mount: any) => mount.name === 'credentials').mountPath;
    const mounted = mkdtempSync(join(tmpdir(), 'walrelay-secret-'));
    for (const [key, value] of Object.entries(objects.get('Secret/walrelay-credentials').stringData as Record<string, string>)) writeFileSync(join(mounted, key), value);
    const edgeFile = join(mounted, 'edge.yaml');
    writeFileSync(edgeFile, (configMap.data['edge.yaml'] as string).replaceAll(`${mountPath}/`, `${mounted}/`));
    const edge = loadEdgeConfig(edgeFile, {});
    assert.equal(edge.http?.port, container.ports.find((entry: any) => entry.name === 'http').containerPort);
    assert.equal(edge.sinks[0].port, container.ports.find((entry: any) => entry.name === 'websocket').containerPort);
    const relayConfig = parseAllDocuments(objects.get('ConfigMap/walrelay-config').data['walrelay.yaml']).map((document) => document.toJS())[0];
    assert.ok(relayConfig.sinks.some((sink: any) => sink.type === 'feed' && (sink.name ?? 'walrelay.feed') === edge.feed.name), 'the relay writes the feed the edges read');
    const compose = loadEdgeConfig(join(DEPLOY, 'compose', 'edge.yaml'), {});
    assert.equal(compose.feed.name, 'walrelay.feed');
  });

  it('promtool accepts the Prometheus config and the alert rules, and the rules pass their unit tests', () => {
    const promtool = (...args: string[]) => execFileSync('promtool', args, { cwd: join(DEPLOY, 'prometheus'), encoding: 'utf8', stdio: 'pipe' });
    assert.match(promtool('check', 'rules', 'alerts.yml'), /SUCCESS: 8 rules found/);
    assert.match(promtool('test', 'rules', 'alerts.test.yml'), /SUCCESS/);
    assert.match(promtool('check', 'config', '--syntax-only', 'prometheus.yml'), /SUCCESS/);
  });

  it('the Grafana dashboard is JSON whose every panel has a query', () => {
    const dashboard = JSON.parse(readFileSync(join(DEPLOY, 'grafana', 'walrelay.json'), 'utf8'));
    assert.equal(dashboard.uid, 'walrelay');
    assert.ok(dashboard.panels.length >= 8);
    for (const panel of dashboard.panels) assert.ok(panel.targets.length > 0 && panel.targets.every((target: any) => /walrelay_/.test(target.expr)), panel.title);
  });
});

describe('README', () => {
  it('links only files that exist in the clone (no ../shared), and says which package, not "the card\'s"', () => {
    const readme = readFileSync('README.md', 'utf8');
    assert.doesNotMatch(readme, /\.\.\/shared/);
    assert.doesNotMatch(readme, /the card's/i);
    const targets = [...readme.matchAll(/\]\((?!https?:|#|mailto:)([^)\s]+)\)/g)].map((match) => match[1].split('#')[0]);
    for (const target of targets) assert.ok(statSync(resolve(target), { throwIfNoEntry: false }), `README links ${target}, which is not in the clone`);
  });
});
