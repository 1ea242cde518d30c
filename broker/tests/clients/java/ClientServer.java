import java.io.BufferedReader;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

/**
 * Runs one-shot KafkaCli and GroupCli commands in one long-lived JVM, so a test suite pays the
 * JVM's start and the client's class loading once rather than at every call.
 *
 * <p>Protocol: one JSON request per stdin line,
 * {"main":"KafkaCli"|"GroupCli","args":[...],"stdin":"..."}; one JSON reply per stdout line,
 * {"exit":code,"stdout":"...","stderr":"..."}, exactly what the command would have exited with
 * and printed as a process of its own (an uncaught exception: its stack trace and exit 1).
 * Requests run one at a time; the caller runs more servers for concurrent calls and kills a
 * server whose call overran its time.
 *
 * <p>Between requests, and for client threads a command left behind, System.out and
 * System.err discard what is written: the real stdout carries replies only.
 */
public final class ClientServer {

    public static void main(String[] argv) throws Exception {
        PrintStream replies = System.out;
        PrintStream discard = new PrintStream(OutputStream.nullOutputStream(), true, StandardCharsets.UTF_8);
        InputStream noInput = new ByteArrayInputStream(new byte[0]);
        BufferedReader requests = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        System.setOut(discard);
        System.setErr(discard);
        System.setIn(noInput);
        String line;
        while ((line = requests.readLine()) != null) {
            if (line.isBlank()) continue;
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            ByteArrayOutputStream err = new ByteArrayOutputStream();
            int exit;
            try (PrintStream outStream = new PrintStream(out, true, StandardCharsets.UTF_8);
                 PrintStream errStream = new PrintStream(err, true, StandardCharsets.UTF_8)) {
                System.setOut(outStream);
                System.setErr(errStream);
                try {
                    Map<?, ?> request = (Map<?, ?>) KafkaCli.Json.parse(line);
                    List<?> args = (List<?>) request.get("args");
                    String[] command = args.stream().map(String::valueOf).toArray(String[]::new);
                    Object stdin = request.get("stdin");
                    System.setIn(new ByteArrayInputStream(
                        (stdin == null ? "" : stdin.toString()).getBytes(StandardCharsets.UTF_8)));
                    exit = run(String.valueOf(request.get("main")), command);
                } catch (Throwable t) {
                    t.printStackTrace();
                    exit = 1;
                } finally {
                    System.out.flush();
                    System.err.flush();
                    System.setOut(discard);
                    System.setErr(discard);
                    System.setIn(noInput);
                }
            }
            replies.println(KafkaCli.Json.write(KafkaCli.obj(
                "exit", exit,
                "stdout", out.toString(StandardCharsets.UTF_8),
                "stderr", err.toString(StandardCharsets.UTF_8))));
            replies.flush();
        }
    }

    static int run(String main, String[] argv) throws Exception {
        switch (main) {
            case "KafkaCli": return KafkaCli.run(argv);
            case "GroupCli": return GroupCli.run(argv);
            default:
                System.err.println("ClientServer runs KafkaCli and GroupCli, not " + main);
                return 64;
        }
    }
}
