"""The ubus object `ksmbd`: blob/blobmsg encoding (`blob`), messages (`message`), the
connection to ubusd driven by the server's loop (`client`), and the methods
(`ksmbd_object`)."""
