// loomctl's tiny Kafka Streams application: it copies one topic to another as a streams group (KIP-1071), so tests
// and demos have a streams group to look at. Run from source by loomctl.devstack.streams_app (java MiniStreams.java).
// Arguments: bootstrap-servers application-id source-topic sink-topic state-dir
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;

public class MiniStreams {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);
        props.put("application.id", args[1]);
        props.put("group.protocol", "streams");
        props.put("default.key.serde", "org.apache.kafka.common.serialization.Serdes$ByteArraySerde");
        props.put("default.value.serde", "org.apache.kafka.common.serialization.Serdes$ByteArraySerde");
        props.put("state.dir", args[4]);
        props.put("commit.interval.ms", "500");
        StreamsBuilder builder = new StreamsBuilder();
        builder.stream(args[2]).to(args[3]);
        KafkaStreams streams = new KafkaStreams(builder.build(), props);
        CountDownLatch stopped = new CountDownLatch(1);
        // SIGTERM: close, which commits and leaves the group, then exit
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            streams.close(java.time.Duration.ofSeconds(10));
            stopped.countDown();
        }));
        streams.setStateListener((now, before) -> System.out.println("state " + before + " -> " + now));
        streams.start();
        stopped.await();
    }
}
