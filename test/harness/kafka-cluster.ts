// A real three-node Apache Kafka cluster for failover tests: each node a
// combined broker and KRaft controller (static voters), replication factor 3,
// min.insync.replicas=2, unclean leader election off, on loopback ports in a
// temp dir. Nodes can be killed (-9), stopped cleanly and restarted; the
// preferred-leader election goes through the Java Admin API of the jars.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel, type Admin } from 'kafkajs';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';
import { brokerJvm, kafkaLibs } from './kafka.js';

export interface ClusterNode {
  id: number;
  port: number;
  running: boolean;
}

export interface TestKafkaCluster {
  brokers: string[];
  libs: string;
  nodes: ClusterNode[];
  /** kill -9 of one node: no controlled shutdown, its leaderships fail over after the session timeout. */
  kill(id: number): Promise<void>;
  /** SIGTERM: controlled shutdown (leaderships move first). */
  stopNode(id: number): Promise<void>;
  /** Starts a stopped node on its ports and data, and waits until it serves. */
  startNode(id: number): Promise<void>;
  /** Partition → leader node id (-1 when none). */
  leaders(topic: string): Promise<Map<number, number>>;
  /** Waits until every partition of `topic` has all three replicas in sync. */
  waitForFullIsr(topic: string, timeoutMs?: number): Promise<void>;
  /** Moves each partition's leadership back to its preferred (first) replica, through the Java Admin API. */
  electPreferredLeaders(topic: string): Promise<void>;
  admin(): Promise<Admin>;
  stop(): Promise<void>;
}

/** Java source run with `java File.java`: a preferred-leader election for every partition of a topic. */
const ELECT_JAVA = `
import java.util.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.common.*;
public class Elect {
  public static void main(String[] args) throws Exception {
    Properties props = new Properties();
    props.put("bootstrap.servers", args[0]);
    try (Admin admin = Admin.create(props)) {
      Set<TopicPartition> partitions = new HashSet<>();
      for (TopicPartitionInfo info : admin.describeTopics(List.of(args[1])).allTopicNames().get().get(args[1]).partitions())
        partitions.add(new TopicPartition(args[1], info.partition()));
      ElectLeadersResult result = admin.electLeaders(ElectionType.PREFERRED, partitions);
      for (Map.Entry<TopicPartition, Optional<Throwable>> entry : result.partitions().get().entrySet())
        System.out.println(entry.getKey() + " " + entry.getValue().map(e -> e.getClass().getSimpleName()).orElse("elected"));
    }
  }
}
`;

export async function startKafkaCluster(options: { heap?: string } = {}): Promise<TestKafkaCluster> {
  const libs = kafkaLibs();
  const dir = mkdtempSync(join(tmpdir(), 'walrelay-kafka-cluster-'));
  const ids = [1, 2, 3];
  const ports = new Map<number, { client: number; controller: number }>();
  for (const id of ids) ports.set(id, { client: await freePort(), controller: await freePort() });
  const voters = ids.map((id) => `${id}@127.0.0.1:${ports.get(id)!.controller}`).join(',');
  const jvm = brokerJvm(dir, options.heap ?? '384m');
  const clusterId = execFileSync('java', [...jvm, 'kafka.tools.StorageTool', 'random-uuid'], { encoding: 'utf8' }).trim().split('\n').pop()!.trim();
  const propertiesOf = new Map<number, string>();
  for (const id of ids) {
    const { client, controller } = ports.get(id)!;
    const nodeDir = join(dir, `node${id}`);
    mkdirSync(nodeDir);
    const file = join(nodeDir, 'server.properties');
    writeFileSync(file, [
      'process.roles=broker,controller',
      `node.id=${id}`,
      `controller.quorum.voters=${voters}`,
      `listeners=PLAINTEXT://127.0.0.1:${client},CONTROLLER://127.0.0.1:${controller}`,
      `advertised.listeners=PLAINTEXT://127.0.0.1:${client}`,
      'inter.broker.listener.name=PLAINTEXT',
      'controller.listener.names=CONTROLLER',
      'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
      `log.dirs=${join(nodeDir, 'data')}`,
      'num.partitions=3',
      'default.replication.factor=3',
      'min.insync.replicas=2',
      'unclean.leader.election.enable=false',
      // Leadership moves only when the test asks for it (the preferred-leader election step).
      'auto.leader.rebalance.enable=false',
      'offsets.topic.replication.factor=3',
      'offsets.topic.num.partitions=3',
      'transaction.state.log.replication.factor=3',
      'transaction.state.log.min.isr=2',
      'transaction.state.log.num.partitions=3',
      'share.coordinator.state.topic.replication.factor=3',
      'share.coordinator.state.topic.min.isr=2',
      'group.initial.rebalance.delay.ms=0',
      'auto.create.topics.enable=false',
    ].join('\n') + '\n');
    execFileSync('java', [...jvm, 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', file], { stdio: 'pipe' });
    propertiesOf.set(id, file);
  }

  const brokers = ids.map((id) => `127.0.0.1:${ports.get(id)!.client}`);
  const children = new Map<number, ChildProcess>();
  const outputs = new Map<number, string>();
  const nodes: ClusterNode[] = ids.map((id) => ({ id, port: ports.get(id)!.client, running: false }));
  const kafka = new Kafka({ brokers, clientId: 'walrelay-test-cluster', logLevel: logLevel.NOTHING, retry: { retries: 2 } });

  const launch = (id: number) => {
    const child = spawn('java', [...jvm, 'kafka.Kafka', propertiesOf.get(id)!], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.set(id, child);
    outputs.set(id, '');
    const keep = (chunk: Buffer) => outputs.set(id, (outputs.get(id)! + chunk).slice(-8000));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    nodes.find((node) => node.id === id)!.running = true;
  };

  /** Ready when this very node answers a metadata request listing all running nodes. */
  const waitServing = async (id: number) => {
    const direct = new Kafka({ brokers: [`127.0.0.1:${ports.get(id)!.client}`], clientId: 'walrelay-test-probe', logLevel: logLevel.NOTHING, retry: { retries: 0 } }).admin();
    try {
      await waitFor(async () => {
        const child = children.get(id);
        if (!child || child.exitCode !== null) throw new Error(`kafka node ${id} exited`);
        await direct.connect();
        const { brokers: alive } = await direct.describeCluster();
        return alive.some((broker) => broker.nodeId === id);
      }, { what: `Kafka node ${id}`, timeoutMs: 180_000, intervalMs: 500 });
    } catch (error) {
      throw new Error(`${(error as Error).message}\n--- node ${id} output ---\n${outputs.get(id)}`);
    } finally {
      await direct.disconnect().catch(() => undefined);
    }
  };

  const halt = async (id: number, signal: NodeJS.Signals) => {
    const child = children.get(id);
    children.delete(id);
    nodes.find((node) => node.id === id)!.running = false;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    await exited;
    clearTimeout(timer);
  };

  const withAdmin = async <T>(use: (admin: Admin) => Promise<T>): Promise<T> => {
    const admin = kafka.admin();
    await admin.connect();
    try {
      return await use(admin);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  };

  const cluster: TestKafkaCluster = {
    brokers,
    libs,
    nodes,
    kill: (id) => halt(id, 'SIGKILL'),
    stopNode: (id) => halt(id, 'SIGTERM'),
    async startNode(id) {
      launch(id);
      await waitServing(id);
    },
    leaders: (topic) => withAdmin(async (admin) => {
      const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
      return new Map(topics[0].partitions.map((partition) => [partition.partitionId, partition.leader]));
    }),
    async waitForFullIsr(topic, timeoutMs = 180_000) {
      await waitFor(() => withAdmin(async (admin) => {
        const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
        return topics[0].partitions.every((partition) => partition.isr.length === 3);
      }), { what: `all replicas of ${topic} in sync`, timeoutMs, intervalMs: 500 });
    },
    async electPreferredLeaders(topic) {
      const source = join(dir, 'Elect.java');
      writeFileSync(source, ELECT_JAVA);
      const output = execFileSync('java', ['-cp', join(libs, '*'), source, brokers.join(','), topic], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      // A partition already led by its preferred replica answers ElectionNotNeededException: fine.
      const failed = output.trim().split('\n').filter((line) => !/ (elected|ElectionNotNeededException)$/.test(line));
      if (failed.length > 0) throw new Error(`preferred-leader election failed: ${failed.join('; ')}`);
    },
    async admin() {
      const admin = kafka.admin();
      await admin.connect();
      return admin;
    },
    async stop() {
      await Promise.all(ids.map((id) => halt(id, 'SIGKILL')));
      rmSync(dir, { recursive: true, force: true });
    },
  };

  try {
    for (const id of ids) launch(id);
    for (const id of ids) await waitServing(id);
  } catch (error) {
    await cluster.stop();
    throw error;
  }
  return cluster;
}
