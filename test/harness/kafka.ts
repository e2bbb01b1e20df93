// A real Apache Kafka broker for tests: one combined broker/controller
// (KRaft) from the jars scripts/kafka-jars.sh fetched from Maven Central, on
// random loopback ports, in a temp dir.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import { freePort } from './ports.js';
import { waitFor } from './wait.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const LIBS = join(ROOT, '.cache', 'kafka', 'libs');

export interface TestKafka {
  brokers: string[];
  /** The folder of Kafka jars (for the Java tools and Admin API). */
  libs: string;
  port: number;
  /** Stops the broker process, keeping its data (an outage). */
  pause(): Promise<void>;
  /** Starts it again on the same ports and data, and waits until it serves. */
  resume(): Promise<void>;
  /** SIGSTOP: the broker hangs with its sockets open (no responses, no close). */
  freeze(): void;
  /** SIGCONT after freeze(). */
  thaw(): void;
  stop(): Promise<void>;
}

export interface KafkaOptions {
  /**
   * Clients must authenticate as this user with SASL PLAIN, SCRAM-SHA-256 or
   * SCRAM-SHA-512 (the broker talks to itself on a plaintext listener).
   */
  saslUser?: { username: string; password: string };
  /**
   * Clients connect with TLS (SASL_SSL) to a broker presenting this
   * certificate and key (PEM text). With `client`, the broker also requires
   * that client certificate (mutual TLS) and trusts no other.
   */
  tls?: { cert: string; key: string; client?: { cert: string; key: string } };
  /** Client port to listen on (default: a free one). */
  port?: number;
  /** Port the broker tells clients to use, e.g. a proxy's in front of it (plaintext only). */
  advertisedPort?: number;
  /**
   * A second plaintext listener: clients that bootstrap on `port` are told to
   * use `advertisedPort` (e.g. a proxy in front of it), while clients of the
   * first listener keep talking to the broker directly.
   */
  secondListener?: { port: number; advertisedPort: number };
  /** The broker's message.max.bytes (default Kafka's 1 MiB): the largest record batch it accepts. */
  messageMaxBytes?: number;
}

/** The folder of Kafka jars, fetched from Maven Central on first use. */
export function kafkaLibs(): string {
  if (!existsSync(LIBS) || readdirSync(LIBS).length === 0) {
    execFileSync('bash', [join(ROOT, 'scripts', 'kafka-jars.sh')], { stdio: 'inherit' });
  }
  return LIBS;
}

/** Writes a log4j2 configuration into `dir` (warnings only, to stdout) and returns the JVM arguments for a broker there. */
export function brokerJvm(dir: string, heap: string): string[] {
  const log4j = join(dir, 'log4j2.properties');
  writeFileSync(log4j, [
    'appender.out.type=Console',
    'appender.out.name=STDOUT',
    'appender.out.layout.type=PatternLayout',
    'appender.out.layout.pattern=[%d] %p %m (%c)%n',
    'rootLogger.level=WARN',
    'rootLogger.appenderRef.out.ref=STDOUT',
  ].join('\n') + '\n');
  return [`-Xmx${heap}`, '-Xms128m', '-XX:+UseG1GC', `-Dlog4j2.configurationFile=${log4j}`, `-Dkafka.logs.dir=${dir}`, '-cp', join(kafkaLibs(), '*')];
}

export async function startKafka(options: KafkaOptions = {}): Promise<TestKafka> {
  kafkaLibs();
  const dir = mkdtempSync(join(tmpdir(), 'walrelay-kafka-'));
  const [port, controllerPort, internalPort] = [options.port ?? await freePort(), await freePort(), await freePort()];
  const properties = join(dir, 'server.properties');
  const user = options.saslUser;
  const second = options.secondListener;
  const protocol = options.tls ? 'SASL_SSL' : 'SASL_PLAINTEXT';
  const listener = protocol.toLowerCase();
  // Java properties read "\n" in a value as a newline: the PEM texts fit on one line each.
  const pemValue = (pem: string) => pem.trim().replace(/\n/g, '\\n');
  const listeners = user
    ? [
        `listeners=${protocol}://127.0.0.1:${port},INTERNAL://127.0.0.1:${internalPort},CONTROLLER://127.0.0.1:${controllerPort}`,
        `advertised.listeners=${protocol}://127.0.0.1:${port},INTERNAL://127.0.0.1:${internalPort}`,
        'inter.broker.listener.name=INTERNAL',
        `listener.security.protocol.map=CONTROLLER:PLAINTEXT,INTERNAL:PLAINTEXT,${protocol}:${protocol}`,
        'sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256,SCRAM-SHA-512',
        `listener.name.${listener}.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_${user.username}="${user.password}";`,
        `listener.name.${listener}.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;`,
        `listener.name.${listener}.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;`,
        ...(options.tls
          ? ['ssl.keystore.type=PEM', `ssl.keystore.certificate.chain=${pemValue(options.tls.cert)}`, `ssl.keystore.key=${pemValue(options.tls.key)}`]
          : []),
        ...(options.tls?.client
          ? [`listener.name.${listener}.ssl.client.auth=required`, 'ssl.truststore.type=PEM', `ssl.truststore.certificates=${pemValue(options.tls.client.cert)}`]
          : []),
      ]
    : [
        `listeners=PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}${second ? `,SECOND://127.0.0.1:${second.port}` : ''}`,
        `advertised.listeners=PLAINTEXT://127.0.0.1:${options.advertisedPort ?? port}${second ? `,SECOND://127.0.0.1:${second.advertisedPort}` : ''}`,
        'inter.broker.listener.name=PLAINTEXT',
        `listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT${second ? ',SECOND:PLAINTEXT' : ''}`,
      ];
  writeFileSync(properties, [
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
    ...listeners,
    'controller.listener.names=CONTROLLER',
    `log.dirs=${join(dir, 'data')}`,
    'num.partitions=3',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=3',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'share.coordinator.state.topic.replication.factor=1',
    'share.coordinator.state.topic.min.isr=1',
    'group.initial.rebalance.delay.ms=0',
    'auto.create.topics.enable=false',
    ...(options.messageMaxBytes === undefined ? [] : [`message.max.bytes=${options.messageMaxBytes}`]),
  ].join('\n') + '\n');
  const jvm = [...brokerJvm(dir, '512m'), '-Xms256m'];
  const clusterId = execFileSync('java', [...jvm, 'kafka.tools.StorageTool', 'random-uuid'], { encoding: 'utf8' }).trim().split('\n').pop()!.trim();
  // SCRAM credentials live in the cluster metadata: written when the storage is formatted.
  const scram = user ? ['SCRAM-SHA-256', 'SCRAM-SHA-512'].flatMap((mechanism) => ['--add-scram', `${mechanism}=[name=${user.username},password=${user.password}]`]) : [];
  execFileSync('java', [...jvm, 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', properties, ...scram], { stdio: 'pipe' });

  const brokers = [`127.0.0.1:${port}`];
  let child: ChildProcess | null = null;
  let output = '';

  const launch = async () => {
    const process_ = spawn('java', [...jvm, 'kafka.Kafka', properties], { stdio: ['ignore', 'pipe', 'pipe'] });
    child = process_;
    process_.stdout!.on('data', (chunk) => { output = (output + chunk).slice(-8000); });
    process_.stderr!.on('data', (chunk) => { output = (output + chunk).slice(-8000); });
    const sasl = user ? { mechanism: 'plain' as const, ...user } : undefined;
    const ssl = options.tls ? { ca: [options.tls.cert], ...options.tls.client } : undefined;
    const admin = new Kafka({ brokers, clientId: 'walrelay-test-probe', sasl, ssl, logLevel: logLevel.NOTHING, retry: { retries: 0 } }).admin();
    try {
      await waitFor(async () => {
        if (process_.exitCode !== null) throw new Error(`kafka exited with ${process_.exitCode}`);
        await admin.connect();
        await admin.listTopics();
        return true;
      }, { what: `Kafka on port ${port}`, timeoutMs: 90_000, intervalMs: 500 });
    } catch (error) {
      process_.kill('SIGKILL');
      throw new Error(`${(error as Error).message}\n--- kafka output ---\n${output}`);
    } finally {
      await admin.disconnect().catch(() => undefined);
    }
  };

  const halt = async () => {
    const current = child;
    child = null;
    if (!current || current.exitCode !== null || current.signalCode !== null) return;
    const exited = new Promise((resolve) => current.once('exit', resolve));
    current.kill('SIGTERM');
    const timer = setTimeout(() => current.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  };

  await launch();
  return {
    brokers,
    libs: LIBS,
    port,
    pause: halt,
    resume: launch,
    freeze: () => { child?.kill('SIGSTOP'); },
    thaw: () => { child?.kill('SIGCONT'); },
    async stop() {
      await halt();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
