"""The programme and the sign-ups. (The blueprint lives in registration.views; importing it
here would load the views, and with them the outbox, whenever only the models are wanted.)"""
