"""`python -m worker health`: is the engine able to do its work, and has it been doing it?"""
