// Runs AWS's DynamoDB Local on 127.0.0.1 only, for as long as its parent lives.
//
// DynamoDB Local's own launcher listens on every interface and outlives a parent
// that is killed. This one builds the same server from the same command line,
// binds its connector to loopback before it starts, prints the port once it
// listens, and stops when its standard input closes (the parent is gone).
// Run in source-file mode: java -cp DynamoDBLocal.jar LoopbackDynamoDBLocal.java ARGS

import java.lang.reflect.Field;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

public class LoopbackDynamoDBLocal {
    public static void main(String[] args) throws Exception {
        DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
        Field field = DynamoDBProxyServer.class.getDeclaredField("server");
        field.setAccessible(true);
        Server server = (Server) field.get(proxy);
        int port = -1;
        for (Connector connector : server.getConnectors()) {
            ((ServerConnector) connector).setHost("127.0.0.1");
        }
        proxy.start();
        for (Connector connector : server.getConnectors()) {
            port = ((ServerConnector) connector).getLocalPort();
        }
        System.out.println(port);
        System.out.flush();
        while (System.in.read() != -1) {
            // nothing to read: the parent only ever closes this pipe
        }
        Runtime.getRuntime().halt(0);
    }
}
