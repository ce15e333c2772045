# The app's image for deploy/nais/proxy-in-container.yaml: the app as it was, plus the portvakt
# binary (static: it runs on any Linux base) and the route policy. portvakt is the entrypoint
# and starts the app as its child (`serve ... -- CMD`); the manifest's spec.command says the same.
FROM localhost/portvakt:latest AS portvakt

FROM gcr.io/distroless/java21-debian12
COPY --from=portvakt /portvakt /portvakt
COPY policy.toml /app/policy.toml
COPY app.jar /app/app.jar
USER 1069:1069
ENTRYPOINT ["/portvakt", "serve", "--upstream", "http://127.0.0.1:8081", "--policy", "/app/policy.toml", "--proxy-listen", "0.0.0.0:8080", "--", "java", "-jar", "/app/app.jar"]
