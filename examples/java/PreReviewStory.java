// A county system calling approvalflow over HTTP with nothing but the JDK (java.net.http).
//
//   javac -d build PreReviewStory.java
//   java -cp build PreReviewStory http://127.0.0.1:8000 "$TOKEN" P-JAVA-1
//
// The token is one issued with `approvalflow token issue --system oa --trusted`: the system
// names the acting person of each request in the Approvalflow-Actor header. The story: create
// a project, take it through pre-review, read a reviewer's task list, and see a write made on
// a version the project has left refused with 412.

import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.time.Duration;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public final class PreReviewStory {
    private final HttpClient http = HttpClient.newBuilder()
            .connectTimeout(Duration.ofSeconds(5)).build();
    private final String base;
    private final String token;

    private PreReviewStory(String base, String token) {
        this.base = base.replaceAll("/+$", "");
        this.token = token;
    }

    /** One answer: its status, its ETag (the project's version) and its JSON body. */
    record Answer(int status, String etag, String body) {
        String field(String name) {
            // Enough JSON for a flat string field; a real client would use its JSON library.
            Matcher m = Pattern.compile("\"" + name + "\":\"([^\"]*)\"").matcher(body);
            return m.find() ? m.group(1) : null;
        }
    }

    private Answer post(String path, String actor, String json, String ifMatch) throws Exception {
        HttpRequest.Builder request = HttpRequest.newBuilder(URI.create(base + path))
                .timeout(Duration.ofSeconds(10))
                .header("Authorization", "Bearer " + token)
                .header("Approvalflow-Actor", actor)
                .header("Content-Type", "application/json")
                .POST(HttpRequest.BodyPublishers.ofString(json));
        if (ifMatch != null) {
            request.header("If-Match", ifMatch);
        }
        return send(request.build());
    }

    private Answer get(String path, String actor) throws Exception {
        return send(HttpRequest.newBuilder(URI.create(base + path))
                .timeout(Duration.ofSeconds(10))
                .header("Authorization", "Bearer " + token)
                .header("Approvalflow-Actor", actor)
                .GET().build());
    }

    private Answer send(HttpRequest request) throws Exception {
        HttpResponse<String> response = http.send(request, HttpResponse.BodyHandlers.ofString());
        return new Answer(response.statusCode(),
                response.headers().firstValue("ETag").orElse(null), response.body());
    }

    private static void expect(Answer answer, int status, String what) {
        if (answer.status() != status) {
            throw new IllegalStateException(what + ": expected " + status + ", got "
                    + answer.status() + " " + answer.body());
        }
        System.out.println(what + ": " + answer.status()
                + (answer.etag() != null ? " ETag " + answer.etag() : ""));
    }

    private void run(String project) throws Exception {
        String fields = "{\"id\":\"" + project + "\",\"fields\":{\"name\":\"富远新型铝材产业园\","
                + "\"investment\":\"15亿\",\"applicant\":\"fuyuan\",\"leader\":\"huang\","
                + "\"department\":\"gxj\",\"team\":\"light_alloy\"}}";
        Answer created = post("/projects", "guo", fields, null);
        expect(created, 201, "create " + project);
        String commands = "/projects/" + project + "/commands/";

        Answer negotiating = post(commands + "negotiate", "guo", "{}", created.etag());
        expect(negotiating, 200, "negotiate (If-Match " + created.etag() + ")");
        Answer submitted = post(commands + "submit_pre_review", "guo", "{\"materials\":[]}",
                negotiating.etag());
        expect(submitted, 200, "submit_pre_review");

        Answer tasks = get("/tasks", "r_gxj");
        expect(tasks, 200, "tasks of r_gxj");
        if (!tasks.body().contains("\"project\":\"" + project + "\"")
                || !tasks.body().contains("\"kind\":\"review\"")) {
            throw new IllegalStateException("r_gxj's task list lacks the review: " + tasks.body());
        }
        System.out.println("  " + tasks.body());

        for (String unit : new String[] {"gxj", "fgw", "zrzy", "sthj"}) {
            expect(post(commands + "opinion", "r_" + unit, "{\"verdict\":\"pass\"}", null), 200,
                    "opinion of " + unit);
        }
        Answer project_ = get("/projects/" + project, "guo");
        expect(project_, 200, "read " + project);
        if (!"decision.pending".equals(project_.field("stage"))) {
            throw new IllegalStateException("pre-review did not pass: " + project_.body());
        }
        System.out.println("  stage " + project_.field("stage"));

        // A write decided on the version read before the opinions came in: refused, not lost.
        Answer stale = post(commands + "convene", "chair", "{\"present\":[\"chair\"]}",
                submitted.etag());
        expect(stale, 412, "convene with the stale If-Match " + submitted.etag());
        System.out.println("  " + stale.field("code") + ": " + stale.field("detail"));
    }

    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: PreReviewStory BASE_URL TOKEN PROJECT_ID");
            System.exit(2);
        }
        new PreReviewStory(args[0], args[1]).run(args[2]);
        System.out.println("OK");
    }
}
